// Watching while it downloads: from one source capped at 64 MiB/s, how soon the gateway hands over the
// first byte and answers a seek to the end, beside how long `peer get` takes for the whole file.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hashFile, makeFile } from './support/files.ts'
import { network } from './support/network.ts'
import type { Figure } from './support/report.ts'

const MiB = 1024 * 1024
const RATE = '64M'

export async function benchStreaming(options: {
  quick: boolean
  log: (line: string) => void
}): Promise<Figure[]> {
  const { quick, log } = options
  const size = (quick ? 256 : 1024) * MiB
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-stream-'))
  const file = join(work, `film-${size / MiB}MiB.mkv`)
  log(`writing a ${size / MiB} MiB file ...`)
  makeFile(file, size)
  const sha = await hashFile(file)
  const net = await network()
  try {
    await net.peer('capped', { files: [file], rate: RATE })

    // Readers that keep nothing (?keep=0): their transfers stop when they do, so no finished copy
    // becomes a second source for what is measured after them.
    log('the gateway: first byte of a read from the start ...')
    const viewer = await net.peer('viewer')
    const started = performance.now()
    const answer = await fetch(`http://127.0.0.1:${viewer.port}/content/${sha}?keep=0`)
    const reader = answer.body?.getReader()
    const first = await reader?.read()
    const firstByte = (performance.now() - started) / 1000
    if (!first?.value?.length) throw new Error('the gateway sent nothing')
    await reader?.cancel()

    log('the gateway: a seek to the last MiB on a peer that has nothing yet ...')
    const seeker = await net.peer('seeker')
    const seekStarted = performance.now()
    const tail = await fetch(`http://127.0.0.1:${seeker.port}/content/${sha}?keep=0`, {
      headers: { range: `bytes=-${MiB}` },
    })
    const tailBytes = (await tail.arrayBuffer()).byteLength
    const seek = (performance.now() - seekStarted) / 1000
    if (tail.status !== 206 || tailBytes !== MiB)
      throw new Error(`the seek answered ${tail.status}, ${tailBytes} bytes`)

    log(`peer get of the whole file from the source capped at ${RATE}/s ...`)
    const getter = await net.peer('getter')
    const whole = (await net.get(getter.port, sha)).seconds
    log(`first byte ${firstByte.toFixed(2)} s, seek ${seek.toFixed(2)} s, whole ${whole.toFixed(1)} s`)

    const note = `one source capped at ${RATE}/s, ${size / MiB} MiB; the whole file by peer get took ${whole.toFixed(1)} s`
    return [
      {
        key: `stream_first_byte_${size / MiB}MiB`,
        value: firstByte,
        unit: 's',
        versus: 'the whole download (peer get)',
        ratio: firstByte / whole,
        note,
      },
      {
        key: `stream_seek_to_end_${size / MiB}MiB`,
        value: seek,
        unit: 's',
        versus: 'the whole download (peer get)',
        ratio: seek / whole,
        note,
      },
    ]
  } finally {
    net.close()
    rmSync(work, { recursive: true, force: true })
  }
}
