const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function formatBytes(bytes: number | bigint): string {
  let value = Number(bytes)
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--'
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const rest = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`
}

/** 1st, 2nd, 3rd, 4th, 11th, 21st... */
export function ordinal(n: number): string {
  const tens = n % 100
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th')
  return `${n}${suffix}`
}

/** Rows as aligned columns (the last column is left ragged). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/** A one-line progress bar redrawn in place: bytes, percent, rate, ETA and live sources. */
export class ProgressBar {
  readonly #stream: NodeJS.WriteStream
  readonly #started = performance.now()
  #startBytes: number | undefined

  constructor(stream: NodeJS.WriteStream) {
    this.#stream = stream
  }

  /** `note`: said after the bar (which sources make us wait in their queue). */
  update(name: string, done: number, total: number, sources: number, note = '') {
    this.#startBytes ??= done
    const elapsed = (performance.now() - this.#started) / 1000
    const rate = elapsed > 0 ? (done - this.#startBytes) / elapsed : 0
    const eta = rate > 0 ? (total - done) / rate : Number.POSITIVE_INFINITY
    const fraction = total > 0 ? done / total : 1
    const width = Math.max(10, Math.min(30, (this.#stream.columns ?? 80) - 70))
    const filled = Math.round(fraction * width)
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`
    const text =
      `${name.slice(0, 24)} ${bar} ${(fraction * 100).toFixed(0).padStart(3)}% ` +
      `${formatBytes(done)}/${formatBytes(total)} ${formatBytes(rate)}/s ETA ${formatDuration(eta)} ` +
      `${sources} source${sources === 1 ? '' : 's'}${note ? `; ${note}` : ''}`
    // A note that made the line wrap would leave its first part behind at each redraw: cut it to fit.
    const fitted = note
      ? text.slice(0, Math.max(text.length - note.length, (this.#stream.columns ?? 80) - 1))
      : text
    this.#stream.write(`\r\u001b[2K${fitted}`)
  }

  end() {
    this.#stream.write('\n')
  }
}
