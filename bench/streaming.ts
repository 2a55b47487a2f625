// Watching while it downloads: from one source capped at 64 MiB/s, how soon the gateway hands over the
// first byte and answers a seek to the end, beside how long `peer get` takes for the whole file. Then,
// from one source capped at 4 MiB/s and from four capped at 1 MiB/s each, what a player gets: the
// in-order read rate through the gateway as a fraction of the cap, a 1 MB range from the middle of a
// file the reader lacks, ffmpeg's seek to 60 s of an MP4 (when ffmpeg is installed), and `peer get`.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
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
  let cappedFigures: Figure[]
  try {
    cappedFigures = [
      ...(await capped({ work, log, sources: 1 })),
      ...(await capped({ work, log, sources: 4 })),
    ]
  } catch (err) {
    rmSync(work, { recursive: true, force: true })
    throw err
  }
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
    // Each URL is had before the clock starts: `peer url` is a process of its own (about 0.2 s).
    const viewerUrl = gatewayUrl(net, viewer.port, sha)
    const started = performance.now()
    const answer = await fetch(viewerUrl)
    if (answer.status !== 200) throw new Error(`the gateway answered ${answer.status}`)
    const reader = answer.body?.getReader()
    const first = await reader?.read()
    const firstByte = (performance.now() - started) / 1000
    if (!first?.value?.length) throw new Error('the gateway sent nothing')
    await reader?.cancel()

    log('the gateway: a seek to the last MiB on a peer that has nothing yet ...')
    const seeker = await net.peer('seeker')
    const seekerUrl = gatewayUrl(net, seeker.port, sha)
    const seekStarted = performance.now()
    const tail = await fetch(seekerUrl, {
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
      ...cappedFigures,
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

/** Total cap of the capped sources, and the file they serve. */
const CAP = 4 * MiB
const CAPPED_SIZE = 64 * MiB
/** The rate once running is taken between these seconds of an in-order read (the whole takes ~16 s). */
const RUNNING_FROM = 4
const RUNNING_TO = 12
const FIRST_SECONDS = 8
const RANGE_BYTES = 1_000_000

async function capped(options: {
  work: string
  log: (line: string) => void
  sources: 1 | 4
}): Promise<Figure[]> {
  const { work, log, sources } = options
  const rate = `${CAP / MiB / sources}M`
  const label = `${sources}x${rate}`
  const file = join(work, `capped-${CAPPED_SIZE / MiB}MiB.bin`)
  makeFile(file, CAPPED_SIZE)
  const sha = await hashFile(file)
  const net = await network()
  try {
    for (let n = 0; n < sources; n++) await net.peer(`source${n}`, { files: [file], rate })

    log(`${label}: in-order read through the gateway ...`)
    const player = await net.peer('player')
    const read = await readInOrder(gatewayUrl(net, player.port, sha))
    const running = read.rateBetween(RUNNING_FROM, RUNNING_TO) / CAP
    const first = read.bytesAt(FIRST_SECONDS) / (FIRST_SECONDS * CAP)

    log(`${label}: a 1 MB range from the middle ...`)
    const seeker = await net.peer('seeker')
    const seekerUrl = gatewayUrl(net, seeker.port, sha)
    const middle = CAPPED_SIZE / 2
    const rangeStarted = performance.now()
    const answer = await fetch(seekerUrl, {
      headers: { range: `bytes=${middle}-${middle + RANGE_BYTES - 1}` },
    })
    const got = (await answer.arrayBuffer()).byteLength
    const range = (performance.now() - rangeStarted) / 1000
    if (answer.status !== 206 || got !== RANGE_BYTES)
      throw new Error(`the range answered ${answer.status}, ${got} bytes`)
    const rangeIdeal = RANGE_BYTES / CAP

    const seek = await ffmpegSeek({ net, work, log, label, rate, sources })

    log(`${label}: peer get of the whole file ...`)
    const getter = await net.peer('getter')
    const whole = (await net.get(getter.port, sha)).seconds
    log(
      `${label}: running ${running.toFixed(2)} of the cap, first ${FIRST_SECONDS} s ${first.toFixed(2)}, ` +
        `1 MB range ${range.toFixed(2)} s (${(range / rangeIdeal).toFixed(1)}x ideal), whole ${whole.toFixed(1)} s`,
    )
    const note = `${sources === 1 ? 'one source' : `${sources} sources`} capped at ${rate}/s, ${CAPPED_SIZE / MiB} MiB`
    const figures: Figure[] = [
      {
        key: `stream_capped_${label}_running`,
        value: running,
        unit: 'x cap',
        versus: 'the cap (goal 0.9)',
        ratio: running,
        note,
      },
      {
        key: `stream_capped_${label}_first_${FIRST_SECONDS}s`,
        value: first,
        unit: 'x cap',
        versus: 'the cap (goal 0.75)',
        ratio: first,
        note,
      },
      {
        key: `stream_capped_${label}_mid_range_1MB`,
        value: range,
        unit: 's',
        versus: '1 MB at the cap (goal 2x)',
        ratio: range / rangeIdeal,
        note,
      },
      {
        key: `stream_capped_${label}_whole`,
        value: whole,
        unit: 's',
        versus: 'the file at the cap',
        ratio: whole / (CAPPED_SIZE / CAP),
        note,
      },
    ]
    if (seek) figures.push({ ...seek, key: `stream_capped_${label}_ffmpeg_seek_60s`, note })
    return figures
  } finally {
    net.close()
  }
}

/** Reads a URL to its end, noting when each piece arrived. */
async function readInOrder(url: string) {
  const marks: { at: number; bytes: number }[] = []
  const started = performance.now()
  const answer = await fetch(url)
  if (answer.status !== 200) throw new Error(`the gateway answered ${answer.status}`)
  const reader = answer.body?.getReader()
  if (!reader) throw new Error('the gateway sent no body')
  let bytes = 0
  for (let piece = await reader.read(); !piece.done; piece = await reader.read()) {
    bytes += piece.value.length
    marks.push({ at: (performance.now() - started) / 1000, bytes })
  }
  const bytesAt = (seconds: number) => marks.findLast((mark) => mark.at <= seconds)?.bytes ?? 0
  return {
    bytesAt,
    rateBetween: (from: number, to: number) => (bytesAt(to) - bytesAt(from)) / (to - from),
  }
}

/**
 * ffmpeg decoding the frame at 60 s of a 120 s MP4 it reads through the gateway of a peer that has none
 * of it, against twice the bytes it needed (counted by a second read of the seek from a peer that has
 * the file) at the cap. Skipped, with a line, when ffmpeg is not installed.
 */
async function ffmpegSeek(options: {
  net: Awaited<ReturnType<typeof network>>
  work: string
  log: (line: string) => void
  label: string
  rate: string
  sources: number
}): Promise<Omit<Figure, 'key' | 'note'> | undefined> {
  const { net, work, log, label, rate, sources } = options
  if (spawnSync('ffmpeg', ['-version']).status !== 0) {
    log(`${label}: ffmpeg is not installed; the seek to 60 s is not measured`)
    return undefined
  }
  const film = join(work, `film-${sources}.mp4`)
  execFileSync('ffmpeg', [
    ...['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=25:duration=120`],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '6M', '-g', '50', film],
  ])
  const filmSha = await hashFile(film)
  for (let n = 0; n < sources; n++) await net.peer(`film${n}`, { files: [film], rate })
  const viewer = await net.peer('viewer')
  const url = gatewayUrl(net, viewer.port, filmSha)
  log(`${label}: ffmpeg -ss 60 on a ${(statSync(film).size / MiB).toFixed(0)} MiB MP4 ...`)
  const started = performance.now()
  execFileSync('ffmpeg', ['-v', 'error', '-ss', '60', '-i', url, '-frames:v', '1', '-f', 'null', '-'])
  const seconds = (performance.now() - started) / 1000
  const needed = bytesFfmpegReads(film)
  const ideal = needed / CAP
  log(
    `${label}: ffmpeg seek ${seconds.toFixed(2)} s, ${(needed / MiB).toFixed(1)} MiB read (${(seconds / ideal).toFixed(1)}x ideal)`,
  )
  return { value: seconds, unit: 's', versus: 'bytes needed at the cap (goal 2x)', ratio: seconds / ideal }
}

/** The bytes ffmpeg reads for the same seek from the local file (its `-stats` of the input protocol). */
function bytesFfmpegReads(film: string): number {
  const run = spawnSync(
    'ffmpeg',
    ['-v', 'debug', '-ss', '60', '-i', `file:${film}`, '-frames:v', '1', '-f', 'null', '-'],
    {
      encoding: 'utf8',
    },
  )
  const read = /Statistics: (\d+) bytes read/.exec(run.stderr ?? '')
  return read ? Number(read[1]) : 2 * MiB
}

/**
 * The gateway URL `peer url` prints (its capability makes the daemon fetch), for a reader that keeps
 * nothing (`keep=0`): its transfer stops when it does, so no finished copy becomes a second source.
 */
function gatewayUrl(net: Awaited<ReturnType<typeof network>>, port: number, sha: string): string {
  const printed = execFileSync(
    join(process.cwd(), 'node_modules/.bin/node'),
    ['dist/peer.js', 'url', sha, '--port', String(port)],
    { env: { ...process.env, ...net.env }, encoding: 'utf8' },
  )
  return `${printed.trim()}&keep=0`
}
