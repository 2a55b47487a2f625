import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'

/** One measured figure; `ratio` is peerdir's figure divided by the alternative's, measured in the same run. */
export type Figure = { key: string; value: number; unit: string; versus?: string; ratio?: number }

export function printTable(figures: Figure[]) {
  const width = Math.max(...figures.map((f) => f.key.length))
  for (const f of figures) {
    const value = Number.isInteger(f.value) ? String(f.value) : f.value.toFixed(2)
    const ratio = f.ratio !== undefined ? `  ${f.ratio.toFixed(2)}x ${f.versus}` : ''
    console.log(`${f.key.padEnd(width)}  ${value.padStart(10)} ${f.unit.padEnd(8)}${ratio}`)
  }
}

export function machine() {
  return `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}`
}

/** Writes the run's figures; a partial run (--only) updates its own keys and keeps the others. */
export function writeResults(path: string, figures: Figure[], quick: boolean, partial = false) {
  let kept: Record<string, unknown> = {}
  if (partial) {
    try {
      kept = (JSON.parse(readFileSync(path, 'utf8')) as { figures: Record<string, unknown> }).figures
    } catch {
      // nothing to keep
    }
  }
  const results = {
    measuredAt: new Date().toISOString(),
    machine: machine(),
    mode: quick ? 'quick' : 'full',
    figures: { ...kept, ...Object.fromEntries(figures.map(({ key, ...rest }) => [key, rest])) },
  }
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`)
}
