// Upload slots: one source on a capped uplink, 8 downloaders asking at once. How soon the first of
// them has the whole file with 2 slots (two at a time at full speed, the rest queued) against 8 (today's
// everyone at once, each at an eighth of the cap). Downloaders that finish share the file too, so the
// last ones finish sooner in both runs; the first to finish is the figure the slots are for.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hashFile, makeFile } from './support/files.ts'
import { network } from './support/network.ts'
import type { Figure } from './support/report.ts'

const MiB = 1024 * 1024
const RATE = '8M'
const DOWNLOADERS = 8
const SLOTS = 2

export async function benchUploadSlots(options: {
  quick: boolean
  log: (line: string) => void
}): Promise<Figure[]> {
  const { quick, log } = options
  const size = (quick ? 16 : 32) * MiB
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-slots-'))
  try {
    const file = join(work, `popular-${size / MiB}MiB.bin`)
    makeFile(file, size)
    const sha = await hashFile(file)
    const slotted = await finishTimes({ file, sha, slots: SLOTS, log })
    const everyone = await finishTimes({ file, sha, slots: DOWNLOADERS, log })
    const note = `one source capped at ${RATE}/s, ${size / MiB} MiB, ${DOWNLOADERS} downloaders at once; ${SLOTS} slots: all done in ${slotted.last.toFixed(1)} s, everyone at once: in ${everyone.last.toFixed(1)} s`
    return [
      {
        key: `slots_first_done_${SLOTS}of${DOWNLOADERS}`,
        value: slotted.first,
        unit: 's',
        versus: 'everyone served at once',
        ratio: slotted.first / everyone.first,
        note,
      },
    ]
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** Seconds from the start until the first and the last of the downloaders had the file verified. */
async function finishTimes(options: {
  file: string
  sha: string
  slots: number
  log: (line: string) => void
}): Promise<{ first: number; last: number }> {
  const { file, sha, slots, log } = options
  const net = await network()
  try {
    await net.peer('popular', { files: [file], rate: RATE, args: ['--upload-slots', String(slots)] })
    const downloaders = await Promise.all(
      Array.from({ length: DOWNLOADERS }, (_, i) => net.peer(`downloader${i + 1}`)),
    )
    log(`${DOWNLOADERS} downloaders from one source at ${RATE}/s with ${slots} upload slots ...`)
    const started = performance.now()
    const done = await Promise.all(
      downloaders.map(async ({ port }) => {
        await net.get(port, sha)
        return (performance.now() - started) / 1000
      }),
    )
    const first = Math.min(...done)
    const last = Math.max(...done)
    log(`first done in ${first.toFixed(1)} s, last in ${last.toFixed(1)} s`)
    return { first, last }
  } finally {
    net.close()
  }
}
