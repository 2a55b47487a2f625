// One source on loopback: `peer get` over TLS (the default) and in plaintext, beside curl from Node's HTTP
// server and from nginx (sendfile; HTTP and HTTPS), with
// the CPU-seconds per GiB of each end, so the gap is seen per process, not only as wall time on shared
// cores; and the machine's raw read+hash ceiling.
import { spawnSync } from 'node:child_process'
import { createReadStream, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:http'
import { basename, join } from 'node:path'
import { listen } from '../tests/support/ports.ts'
import { type NginxServer, startNginx } from './alternatives/nginx.ts'
import { cpuSeconds, curlDownload, ownCpuSeconds } from './support/cpu.ts'
import { hashFile, makeFile } from './support/files.ts'
import { network } from './support/network.ts'
import { peakRssMiB } from './support/processes.ts'
import type { Figure } from './support/report.ts'

const MiB = 1024 * 1024

/** The middle value; for an even count, the mean of the middle two. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  if (sorted.length % 2 === 1) return sorted[middle] ?? 0
  return ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

/** Per-round samples of one way of fetching the file: MiB/s and each end's CPU-seconds per GiB. */
class Runs {
  readonly rates: number[] = []
  readonly receiver: number[] = []
  readonly sender: number[] = []
  add(bytes: number, seconds: number, receiverCpu: number, senderCpu: number) {
    this.rates.push(bytes / MiB / seconds)
    this.receiver.push(receiverCpu / (bytes / 2 ** 30))
    this.sender.push(senderCpu / (bytes / 2 ** 30))
  }
  get rate() {
    return median(this.rates)
  }
  get receiverCpu() {
    return median(this.receiver)
  }
  get senderCpu() {
    return median(this.sender)
  }
  get line() {
    const last = (values: number[]) => values.at(-1)?.toFixed(2)
    return `${this.rates.at(-1)?.toFixed(0)} MiB/s, CPU-s/GiB receiver ${last(this.receiver)} sender ${last(this.sender)}`
  }
}

export async function benchSingleSource(options: {
  quick: boolean
  work: string
  log: (line: string) => void
}): Promise<{ figures: Figure[]; file: string; peerMiBs: number }> {
  const { quick, work, log } = options
  const size = (quick ? 256 : 1024) * MiB
  const file = join(work, `single-${size / MiB}MiB.bin`)
  log(`writing a ${size / MiB} MiB file ...`)
  makeFile(file, size)
  const sha = await hashFile(file)
  // The plaintext source serves a file of its own, so each download has one source only.
  const plainFile = join(work, `single-plain-${size / MiB}MiB.bin`)
  makeFile(plainFile, size)
  const plainSha = await hashFile(plainFile)
  const rawStarted = performance.now()
  await hashFile(file)
  const rawMiBs = size / MiB / ((performance.now() - rawStarted) / 1000)

  const haveCurl = spawnSync('curl', ['--version']).status === 0
  if (!haveCurl) log('curl not found: skipping the curl comparisons')
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': statSync(file).size })
    createReadStream(file, { highWaterMark: MiB }).pipe(res)
  })
  const nodeUrl = `http://127.0.0.1:${await listen(server)}/`
  let nginx: NginxServer | undefined
  if (haveCurl) {
    nginx = await startNginx(file)
    if (!nginx) log('nginx not found at /usr/sbin/nginx (Debian package `nginx`): skipping that comparison')
  }
  const net = await network()
  const peer = new Runs()
  const peerPlain = new Runs()
  const curlNode = new Runs()
  const curlNginx = new Runs()
  const curlNginxTls = new Runs()
  let fetcherRss = 0
  try {
    // Rounds alternate the three, so all meet the same machine (page cache, writeback, other load);
    // each figure is the median of its rounds. Each round's fetcher is a fresh daemon, and the first
    // download of a round costs more, whichever it is: TLS and plaintext take turns at going first, two
    // rounds each.
    const rounds = 4
    // The default source serves over TLS (pinned key); the other with --plaintext, as before TLS.
    const source = await net.peer('source', { files: [file] })
    const plainSource = await net.peer('plain-source', { files: [plainFile], args: ['--plaintext'] })
    for (let round = 1; round <= rounds; round++) {
      const fetcher = await net.peer(`fetcher${round}`)
      const gets = [
        [peer, source, sha, 'over TLS'],
        [peerPlain, plainSource, plainSha, 'in plaintext'],
      ] as const
      for (const [runs, from, content, what] of round % 2 === 1 ? gets : [...gets].reverse()) {
        const before = [await cpuSeconds(fetcher.pid), await cpuSeconds(from.pid)]
        const got = await net.get(fetcher.port, content)
        const after = [await cpuSeconds(fetcher.pid), await cpuSeconds(from.pid)]
        runs.add(size, got.seconds, (after[0] ?? 0) - (before[0] ?? 0), (after[1] ?? 0) - (before[1] ?? 0))
        log(`round ${round} of ${rounds}: peer get ${what} ${runs.line}`)
        fetcherRss = Math.max(fetcherRss, await peakRssMiB(fetcher.pid))
        // Removed as curl's copy is: on this VM, page cache the guest never touched costs several
        // times more to write than pages it freed, so each must write into the same kind.
        rmSync(join(fetcher.dir, basename(content === sha ? file : plainFile)), { force: true })
      }
      if (!haveCurl) continue
      const out = join(work, 'curl.out')
      const nodeBefore = ownCpuSeconds()
      const fromNode = await curlDownload(nodeUrl, out)
      curlNode.add(size, fromNode.seconds, fromNode.cpu, ownCpuSeconds() - nodeBefore)
      log(`round ${round} of ${rounds}: curl from Node's http ${curlNode.line}`)
      rmSync(out, { force: true })
      if (!nginx) continue
      const nginxBefore = await cpuSeconds(nginx.pid)
      const fromNginx = await curlDownload(nginx.url, out)
      curlNginx.add(size, fromNginx.seconds, fromNginx.cpu, (await cpuSeconds(nginx.pid)) - nginxBefore)
      log(`round ${round} of ${rounds}: curl from nginx ${curlNginx.line}`)
      rmSync(out, { force: true })
      const nginxTlsBefore = await cpuSeconds(nginx.pid)
      const overTls = await curlDownload(nginx.httpsUrl, out)
      curlNginxTls.add(size, overTls.seconds, overTls.cpu, (await cpuSeconds(nginx.pid)) - nginxTlsBefore)
      log(`round ${round} of ${rounds}: curl from nginx over HTTPS ${curlNginxTls.line}`)
      rmSync(out, { force: true })
    }
  } finally {
    net.close()
    server.close()
    nginx?.close()
    rmSync(plainFile, { force: true })
  }
  const unit = 'CPU-s/GiB'
  const figures: Figure[] = [
    {
      key: `transfer_single_source_${size / MiB}MiB`,
      value: peer.rate,
      unit: 'MiB/s',
      ...(haveCurl ? { versus: 'curl from a Node HTTP server', ratio: peer.rate / curlNode.rate } : {}),
    },
    { key: 'single_source_cpu_downloading_daemon', value: peer.receiverCpu, unit },
    { key: 'single_source_cpu_serving_daemon', value: peer.senderCpu, unit },
    {
      key: `transfer_single_source_plaintext_${size / MiB}MiB`,
      value: peerPlain.rate,
      unit: 'MiB/s',
      versus: 'peer get over TLS',
      peerdir: peer.rate,
      ratio: peer.rate / peerPlain.rate,
    },
    {
      key: 'single_source_cpu_downloading_daemon_plaintext',
      value: peerPlain.receiverCpu,
      unit,
      versus: 'downloading daemon over TLS',
      peerdir: peer.receiverCpu,
      ratio: peer.receiverCpu / peerPlain.receiverCpu,
    },
    {
      key: 'single_source_cpu_serving_daemon_plaintext',
      value: peerPlain.senderCpu,
      unit,
      versus: 'serving daemon over TLS',
      peerdir: peer.senderCpu,
      ratio: peer.senderCpu / peerPlain.senderCpu,
    },
  ]
  if (haveCurl) {
    figures.push(
      { key: 'curl_plain_http', value: curlNode.rate, unit: 'MiB/s' },
      ...cpuBeside('node_http', 'beside curl + Node’s http', curlNode, peer),
    )
  }
  if (nginx) {
    figures.push(
      {
        key: 'curl_nginx_sendfile',
        value: curlNginx.rate,
        unit: 'MiB/s',
        versus: 'peer get',
        peerdir: peer.rate,
        ratio: peer.rate / curlNginx.rate,
      },
      ...cpuBeside('nginx', 'beside curl + nginx, sendfile', curlNginx, peer),
      {
        key: 'curl_nginx_https',
        value: curlNginxTls.rate,
        unit: 'MiB/s',
        versus: 'peer get over TLS',
        peerdir: peer.rate,
        ratio: peer.rate / curlNginxTls.rate,
      },
      ...cpuBeside('nginx_https', 'beside curl + nginx over HTTPS', curlNginxTls, peer),
    )
  }
  figures.push(
    {
      key: 'raw_read_and_sha256',
      value: rawMiBs,
      unit: 'MiB/s',
      versus: 'peer get',
      ratio: peer.rate / rawMiBs,
    },
    { key: `downloader_peak_rss_${size / MiB}MiB`, value: fetcherRss, unit: 'MiB' },
  )
  return { figures, file, peerMiBs: peer.rate }
}

/** An alternative's CPU-seconds per GiB at each end, each beside the peerdir daemon at the same end. */
function cpuBeside(name: string, how: string, alternative: Runs, peer: Runs): Figure[] {
  return [
    {
      key: `single_source_cpu_curl_from_${name}`,
      value: alternative.receiverCpu,
      unit: 'CPU-s/GiB',
      versus: `downloading daemon, ${how}`,
      peerdir: peer.receiverCpu,
      ratio: peer.receiverCpu / alternative.receiverCpu,
    },
    {
      key: `single_source_cpu_${name}_server`,
      value: alternative.senderCpu,
      unit: 'CPU-s/GiB',
      versus: `serving daemon, ${how}`,
      peerdir: peer.senderCpu,
      ratio: peer.senderCpu / alternative.senderCpu,
    },
  ]
}
