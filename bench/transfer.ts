// Transfers on loopback: `peer get` next to curl from a plain HTTP server and the machine's raw
// read+hash ceiling; swarm speed-up with sources throttled to the same rate; downloader peak memory.
import { execFile, spawnSync } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import {
  closeSync,
  createReadStream,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { createServer } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { aria2Figures } from './alternatives/aria2.ts'
import { webTorrentFigures } from './alternatives/webtorrent.ts'
import { peakRssMiB, spawnUntil } from './support/processes.ts'
import type { Figure } from './support/report.ts'

const MiB = 1024 * 1024

export function makeFile(path: string, bytes: number) {
  const fd = openSync(path, 'w')
  const block = Buffer.allocUnsafe(8 * MiB)
  for (let written = 0; written < bytes; written += block.length) {
    randomFillSync(block)
    writeSync(fd, block, 0, Math.min(block.length, bytes - written))
  }
  closeSync(fd)
}

export async function hashFile(path: string) {
  const hash = createHash('sha256')
  for await (const data of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(data as Buffer)
  return hash.digest('hex')
}

type Network = {
  work: string
  directoryUrl: string
  env: Record<string, string>
  peer: (
    name: string,
    options?: { files?: string[]; rate?: string; args?: string[]; ready?: RegExp },
  ) => Promise<{ port: number; dir: string; pid: number }>
  get: (
    port: number,
    target: string,
  ) => Promise<{ seconds: number; size: number; bytesPerSource: Record<string, number> }>
  close: () => void
}

export async function network(): Promise<Network> {
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-net-'))
  const env = { PEERDIR_STATE_DIR: join(work, 'state'), PEER_PASSWORD: 'bench-password' }
  const directory = await spawnUntil(
    ['dist/peerdir-directory.js', '--port', '0', '--db', `file:${join(work, 'd.db')}`],
    /listening on (http:\/\/\S+)/,
  )
  const directoryUrl = directory.match[1] ?? ''
  const children = [directory.child]
  return {
    work,
    directoryUrl,
    env,
    async peer(name, options = {}) {
      const dir = join(work, name)
      mkdirSync(dir, { recursive: true })
      for (const file of options.files ?? []) linkSync(file, join(dir, file.split('/').pop() ?? 'file'))
      const port = await freePort()
      const args = [
        'dist/peer.js',
        'start',
        '--name',
        name,
        '--port',
        String(port),
        '--dir',
        dir,
        '--directory',
        directoryUrl,
      ]
      if (options.rate) args.push('--max-upload-rate', options.rate)
      args.push(...(options.args ?? []))
      const started = await spawnUntil(args, options.ready ?? /published \d+ files/, env)
      children.push(started.child)
      return { port, dir, pid: started.child.pid ?? 0 }
    },
    get(port, target) {
      return new Promise((resolve, reject) => {
        execFile(
          join(process.cwd(), 'node_modules/.bin/node'),
          ['dist/peer.js', 'get', target, '--json', '--port', String(port)],
          { env: { ...process.env, ...env }, maxBuffer: 1 << 20 },
          (err, stdout, stderr) =>
            err ? reject(new Error(stderr || err.message)) : resolve(JSON.parse(stdout)),
        )
      })
    },
    close() {
      for (const child of children) child.kill('SIGKILL')
      rmSync(work, { recursive: true, force: true })
    },
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createNetServer().listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

function curlDownload(url: string, out: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    execFile('curl', ['-sS', '-o', out, url], (err) =>
      err ? reject(err) : resolve((performance.now() - started) / 1000),
    )
  })
}

export async function benchTransfer(options: {
  quick: boolean
  log: (line: string) => void
}): Promise<Figure[]> {
  const { quick, log } = options
  const figures: Figure[] = []
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-files-'))
  try {
    // Single source: peerdir next to curl and the raw ceiling.
    const singleSize = (quick ? 256 : 1024) * MiB
    const single = join(work, `single-${singleSize / MiB}MiB.bin`)
    log(`writing a ${singleSize / MiB} MiB file ...`)
    makeFile(single, singleSize)
    const sha = await hashFile(single)
    const rawStarted = performance.now()
    await hashFile(single)
    const rawMiBs = singleSize / MiB / ((performance.now() - rawStarted) / 1000)

    const net = await network()
    try {
      // Rounds alternate peer get and curl, so both meet the same machine (page cache, writeback,
      // other load); each figure is the median of its rounds.
      const rounds = 3
      await net.peer('source', { files: [single] })
      const haveCurl = spawnSync('curl', ['--version']).status === 0
      if (!haveCurl) log('curl not found: skipping that comparison')
      const server = createServer((_req, res) => {
        res.writeHead(200, { 'content-length': statSync(single).size })
        createReadStream(single, { highWaterMark: MiB }).pipe(res)
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const address = server.address()
      const curlUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`
      const peerRuns: number[] = []
      const curlRuns: number[] = []
      let fetcherRss = 0
      try {
        for (let round = 1; round <= rounds; round++) {
          log(`round ${round} of ${rounds}: peer get, one source ...`)
          const fetcher = await net.peer(`fetcher${round}`)
          const peerGet = await net.get(fetcher.port, sha)
          peerRuns.push(singleSize / MiB / peerGet.seconds)
          fetcherRss = Math.max(fetcherRss, await peakRssMiB(fetcher.pid))
          // Removed as curl's copy is: on this VM, page cache the guest never touched costs several
          // times more to write than pages it freed, so both must write into the same kind.
          rmSync(join(fetcher.dir, basename(single)), { force: true })
          if (haveCurl) {
            log(`round ${round} of ${rounds}: curl from a plain Node HTTP server ...`)
            curlRuns.push(singleSize / MiB / (await curlDownload(curlUrl, join(work, 'curl.out'))))
            rmSync(join(work, 'curl.out'), { force: true })
          }
          log(
            `round ${round}: peer get ${peerRuns.at(-1)?.toFixed(0)} MiB/s` +
              (haveCurl ? `, curl ${curlRuns.at(-1)?.toFixed(0)} MiB/s` : ''),
          )
        }
      } finally {
        server.close()
      }
      const peerMiBs = median(peerRuns)
      const curlMiBs = haveCurl ? median(curlRuns) : undefined
      figures.push(
        {
          key: `transfer_single_source_${singleSize / MiB}MiB`,
          value: peerMiBs,
          unit: 'MiB/s',
          ...(curlMiBs ? { versus: 'curl from a Node HTTP server', ratio: peerMiBs / curlMiBs } : {}),
        },
        ...(curlMiBs ? [{ key: 'curl_plain_http', value: curlMiBs, unit: 'MiB/s' }] : []),
        {
          key: 'raw_read_and_sha256',
          value: rawMiBs,
          unit: 'MiB/s',
          versus: 'peer get',
          ratio: peerMiBs / rawMiBs,
        },
        { key: `downloader_peak_rss_${singleSize / MiB}MiB`, value: fetcherRss, unit: 'MiB' },
      )
      figures.push(
        ...(await webTorrentFigures({ file: single, bytes: singleSize, peerGetMiBs: peerMiBs, log })),
      )
    } finally {
      net.close()
    }

    // Many sources, each throttled to the same rate R.
    const rate = quick ? 16 : 24
    const swarmSize = (quick ? 128 : 384) * MiB
    const swarmFile = join(work, `swarm-${swarmSize / MiB}MiB.bin`)
    makeFile(swarmFile, swarmSize)
    const swarmSha = await hashFile(swarmFile)
    const swarmMultiples = new Map<number, number>()
    for (const count of [1, 2, 4]) {
      log(`swarm: ${count} source(s) at ${rate} MiB/s each ...`)
      const swarm = await network()
      try {
        for (let i = 0; i < count; i++) await swarm.peer(`s${i}`, { files: [swarmFile], rate: `${rate}M` })
        const fetcher = await swarm.peer('fetcher')
        const got = await swarm.get(fetcher.port, swarmSha)
        const aggregate = swarmSize / MiB / got.seconds
        swarmMultiples.set(count, aggregate / rate)
        figures.push({
          key: `swarm_${count}_sources_rate_multiple_of_R`,
          value: aggregate / rate,
          unit: `x R (R = ${rate} MiB/s)`,
        })
      } finally {
        swarm.close()
      }
    }

    figures.push(
      ...(await aria2Figures({
        file: swarmFile,
        sha256: swarmSha,
        bytes: swarmSize,
        rateMiBs: rate,
        peerdir: swarmMultiples,
        log,
      })),
    )

    // Downloader memory does not grow with file size.
    for (const gib of quick ? [] : [1, 4]) {
      log(`peak RSS of a downloader fetching ${gib} GiB ...`)
      const big = join(work, `rss-${gib}GiB.bin`)
      makeFile(big, gib * 1024 * MiB)
      const bigSha = await hashFile(big)
      const net2 = await network()
      try {
        await net2.peer('a', { files: [big] })
        await net2.peer('b', { files: [big] })
        const fetcher = await net2.peer('fetcher')
        await net2.get(fetcher.port, bigSha)
        figures.push({
          key: `downloader_peak_rss_${gib}GiB`,
          value: await peakRssMiB(fetcher.pid),
          unit: 'MiB',
        })
      } finally {
        net2.close()
        rmSync(big, { force: true })
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  return figures
}
