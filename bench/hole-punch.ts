// Both peers behind NAT (a home router each: masquerade, nothing in unasked; tests/support/nat-network.ts):
// 40 MB from one home to the other through the relay only (the getter with PEERDIR_PUNCH=off), beside
// the same through the link the relay introduced, and from behind a symmetric NAT (the punch fails, the
// relay carries), in one run, three rounds each way. The relay has no rate cap; the bytes through its
// port are counted by iptables on the public side. Needs root and iptables.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { natNetwork, natUnavailable } from '../tests/support/nat-network.ts'
import { hashFile, makeFile } from './support/files.ts'
import { network } from './support/network.ts'
import { nodeBin, repoRoot, spawnUntil } from './support/processes.ts'
import type { Figure } from './support/report.ts'

const MB = 1000 * 1000

export async function benchHolePunch(options: { log: (line: string) => void }): Promise<Figure[]> {
  const { log } = options
  const unavailable = natUnavailable()
  if (unavailable) {
    log(`hole punching: not measured (${unavailable})`)
    return []
  }
  const size = 40 * MB
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-punch-'))
  const nat = natNetwork()
  const net = await network({ host: nat.publicHost })
  try {
    // A content of its own for each get: a getter that finished shares its copy, and must not become
    // the next one's second source.
    const ways = ['relayed', 'punched', 'symmetric'] as const
    const files = ROUNDS_EACH_WAY.flatMap((round) => ways.map((way) => join(work, `${way}-${round}.bin`)))
    for (const file of files) makeFile(file, size)
    const relay = await spawnUntil(
      [
        ...['dist/peer.js', 'relay', '--host', nat.publicHost, '--port', '0'],
        ...['--directory', net.directoryUrl, '--max-peer-rate', '0'],
      ],
      /relay listening on \S*:(\d+)/,
    )
    const relayPort = Number(relay.match[1])
    const [homeA, homeB] = nat.homes
    const relayArgs = ['--host', '127.0.0.1', '--relay', `http://${nat.publicHost}:${relayPort}`]
    const ready = /registered with relay/
    await net.peer('home-a', { files, args: relayArgs, ready, wrap: homeA.wrap })
    const throughRelay = nat.countPort(relayPort)
    const results = { relayed: [] as Got[], punched: [] as Got[], symmetric: [] as Got[] }
    for (const round of ROUNDS_EACH_WAY) {
      for (const way of ways) {
        log(`40 MB between two homes, ${DESCRIBED[way]} (round ${round + 1}) ...`)
        homeB.symmetric(way === 'symmetric')
        const env: Record<string, string> = way === 'relayed' ? { PEERDIR_PUNCH: 'off' } : {}
        const getter = await net.peer(`${way}-getter-${round}`, {
          args: relayArgs,
          ready,
          wrap: homeB.wrap,
          env,
        })
        const before = throughRelay()
        const result = await net.get(getter.port, await hashFile(join(work, `${way}-${round}.bin`)))
        results[way].push({ seconds: result.seconds, relayBytes: throughRelay() - before })
      }
    }
    homeB.symmetric(false)
    log(`${PUNCH_TRIES} punches in turn from the second home ...`)
    const tries = await punchTries(homeB.wrap, `http://${nat.publicHost}:${relayPort}/relayed/home-a`)
    relay.child.kill('SIGKILL')
    const [relayed, punched, symmetric] = ways.map((way) => median(results[way]))
    const rate = (r: Got) => size / (1024 * 1024) / r.seconds
    const carried = (r: Got) => `${(r.relayBytes / MB).toFixed(2)} MB`
    log(
      `median of ${ROUNDS_EACH_WAY.length}: relayed ${r2(relayed)} s (${carried(relayed)} through the relay), punched ${r2(punched)} s (${carried(punched)}), symmetric NAT ${r2(symmetric)} s (${carried(symmetric)})`,
    )
    return [
      {
        key: 'punched_two_nats_40MB',
        value: rate(punched),
        unit: 'MiB/s',
        versus: 'the same two peers through the relay only',
        ratio: rate(punched) / rate(relayed),
        note: `40 MB, each peer behind its own NAT, median of ${ROUNDS_EACH_WAY.length}; through the relay's port: ${carried(punched)} punched, ${carried(relayed)} relayed (${rate(relayed).toFixed(0)} MiB/s); the relay has no cap and all processes share the two cores`,
      },
      {
        key: 'symmetric_nat_fallback_40MB',
        value: rate(symmetric),
        unit: 'MiB/s',
        versus: 'the relay only (no punch asked)',
        ratio: rate(symmetric) / rate(relayed),
        note: `the getter behind a symmetric NAT (--random-fully): its punch fails and the relay carries ${carried(symmetric)}; the time a failed punch costs`,
      },
      {
        key: 'punch_success_two_nats',
        value: tries.punched / tries.tries,
        unit: 'of tries',
        versus: `${tries.tries} introductions in turn, each a TLS link to the peer`,
        note: `${tries.punched} of ${tries.tries} punched (keys seen: ${tries.keys.length}); ms each: ${tries.ms.join(' ')}${tries.failures.length ? `; failures: ${[...new Set(tries.failures)].join('; ')}` : ''}`,
      },
    ]
  } finally {
    net.close()
    nat.remove()
    rmSync(work, { recursive: true, force: true })
  }
}

type Got = { seconds: number; relayBytes: number }

const PUNCH_TRIES = 20

/** Runs bench/support/punch-tries.ts on the home machine `wrap` names: its one JSON line. */
function punchTries(
  wrap: string[],
  url: string,
): Promise<{ tries: number; punched: number; keys: string[]; ms: number[]; failures: string[] }> {
  return new Promise((resolve, reject) => {
    execFile(
      wrap[0] as string,
      [
        ...wrap.slice(1),
        nodeBin,
        '--import',
        'tsx',
        'bench/support/punch-tries.ts',
        url,
        String(PUNCH_TRIES),
      ],
      { cwd: repoRoot, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(JSON.parse(stdout))),
    )
  })
}

const ROUNDS_EACH_WAY = [0, 1, 2]
const DESCRIBED = {
  relayed: 'through the relay only',
  punched: 'the relay introducing them',
  symmetric: 'the getter behind a symmetric NAT',
}
const r2 = (got: Got) => got.seconds.toFixed(2)
/** The get of median time (its relay bytes with it). */
const median = (gots: Got[]): Got =>
  [...gots].sort((a, b) => a.seconds - b.seconds)[Math.floor(gots.length / 2)] as Got
