import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'

/**
 * One measured figure; `ratio` is peerdir's figure divided by the alternative's, measured in the same run.
 * A figure of an alternative carries peerdir's own (`peerdir`, same unit) and how it was run (`note`).
 */
export type Figure = {
  key: string
  value: number
  unit: string
  versus?: string
  ratio?: number
  peerdir?: number
  note?: string
}

const formatted = (value: number) => (Number.isInteger(value) ? String(value) : value.toFixed(2))

/** peerdir's figure beside the alternative's, when the row is the alternative's, and the ratio. */
function comparison(f: Figure) {
  if (f.ratio === undefined) return ''
  if (f.peerdir === undefined) return `  ${f.ratio.toFixed(2)}x ${f.versus}`
  return `  ${f.versus} ${formatted(f.peerdir)}: peerdir ${f.ratio.toFixed(2)}x this`
}

export function printTable(figures: Figure[]) {
  const width = Math.max(...figures.map((f) => f.key.length))
  for (const f of figures) {
    console.log(
      `${f.key.padEnd(width)}  ${formatted(f.value).padStart(10)} ${f.unit.padEnd(8)}${comparison(f)}`,
    )
  }
  for (const note of new Set(figures.flatMap((f) => (f.note ? [f.note] : [])))) console.log(`  note: ${note}`)
}

export function machine() {
  return `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}`
}

/**
 * Writes the run's figures, each with when and how (quick or full) it was measured; a partial run
 * (--only) updates its own keys and keeps the others with their own times. `measuredAt` at the top is
 * the latest write.
 */
export function writeResults(path: string, figures: Figure[], quick: boolean, partial = false) {
  const measuredAt = new Date().toISOString()
  const mode = quick ? 'quick' : 'full'
  let kept: Record<string, Record<string, unknown>> = {}
  if (partial) {
    try {
      const before = JSON.parse(readFileSync(path, 'utf8')) as {
        measuredAt?: string
        mode?: string
        figures: Record<string, Record<string, unknown>>
      }
      // A figure written before figures carried their own time has the file's.
      kept = Object.fromEntries(
        Object.entries(before.figures).map(([key, f]) => [
          key,
          { measuredAt: before.measuredAt, mode: before.mode, ...f },
        ]),
      )
    } catch {
      // nothing to keep
    }
  }
  const results = {
    measuredAt,
    machine: machine(),
    figures: {
      ...kept,
      ...Object.fromEntries(figures.map(({ key, ...rest }) => [key, { ...rest, measuredAt, mode }])),
    },
  }
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`)
}
