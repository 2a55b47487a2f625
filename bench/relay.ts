// Peers behind NAT: one source's 256 MiB reached directly, beside the same size from a source reached
// only through a relay (`peer relay`, no rate cap), on loopback, in one run. Two contents, so neither
// download finds a second source in the other's finished copy.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../tests/support/ports.ts'
import { hashFile, makeFile } from './support/files.ts'
import { network } from './support/network.ts'
import { spawnUntil } from './support/processes.ts'
import type { Figure } from './support/report.ts'

const MiB = 1024 * 1024

export async function benchRelay(options: {
  quick: boolean
  log: (line: string) => void
}): Promise<Figure[]> {
  const { quick, log } = options
  const size = (quick ? 64 : 256) * MiB
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-relay-'))
  const [directFile, relayedFile] = [join(work, 'direct.bin'), join(work, 'relayed.bin')]
  log(`writing two ${size / MiB} MiB files ...`)
  makeFile(directFile, size)
  makeFile(relayedFile, size)
  const net = await network()
  const relayPort = await freePort()
  const relay = await spawnUntil(
    [
      'dist/peer.js',
      'relay',
      '--host',
      '127.0.0.1',
      '--port',
      String(relayPort),
      '--directory',
      net.directoryUrl,
      '--max-peer-rate',
      '0',
    ],
    /relay listening/,
  )
  try {
    await net.peer('reachable', { files: [directFile] })
    await net.peer('behind-nat', {
      files: [relayedFile],
      args: ['--relay', `http://127.0.0.1:${relayPort}`],
      ready: /registered with relay/,
    })
    log('peer get from the reachable source ...')
    const direct = await net.get((await net.peer('getter-direct')).port, await hashFile(directFile))
    log('peer get from the source behind the relay ...')
    // Through the relay only: on loopback a punch around it would meet no NAT (bench/hole-punch.ts has one).
    const getter = await net.peer('getter-relayed', { env: { PEERDIR_PUNCH: 'off' } })
    const relayed = await net.get(getter.port, await hashFile(relayedFile))
    const rate = (r: { seconds: number }) => size / MiB / r.seconds
    log(`direct ${rate(direct).toFixed(0)} MiB/s, through the relay ${rate(relayed).toFixed(0)} MiB/s`)
    return [
      {
        key: `relayed_one_source_${size / MiB}MiB`,
        value: rate(relayed),
        unit: 'MiB/s',
        versus: 'the same source reached directly',
        ratio: rate(relayed) / rate(direct),
        note: `one source, ${size / MiB} MiB, verified, on disk; direct ${rate(direct).toFixed(0)} MiB/s; the relay, both peers and the downloader share the two cores`,
      },
    ]
  } finally {
    relay.child.kill('SIGKILL')
    net.close()
    rmSync(work, { recursive: true, force: true })
  }
}
