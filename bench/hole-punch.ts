// Both peers behind NAT (a home router each: masquerade, nothing in unasked; tests/support/nat-network.ts):
// 40 MB from one home to the other through the relay only (the getter with PEERDIR_PUNCH=off), beside
// the same through the link the relay introduced, in one run. The relay has no rate cap; the bytes
// through its port are counted by iptables on the public side. Needs root and iptables.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { natNetwork, natUnavailable } from '../tests/support/nat-network.ts'
import { hashFile, makeFile } from './support/files.ts'
import { network } from './support/network.ts'
import { spawnUntil } from './support/processes.ts'
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
    const files = [join(work, 'relayed.bin'), join(work, 'punched.bin')] as const
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
    await net.peer('home-a', { files: [...files], args: relayArgs, ready, wrap: homeA.wrap })
    const throughRelay = nat.countPort(relayPort)
    const get = async (name: string, file: string, env: Record<string, string>) => {
      const getter = await net.peer(name, { args: relayArgs, ready, wrap: homeB.wrap, env })
      const before = throughRelay()
      const result = await net.get(getter.port, await hashFile(file))
      return { seconds: result.seconds, relayBytes: throughRelay() - before }
    }
    log('40 MB between two homes through the relay only ...')
    const relayed = await get('relayed-getter', files[0], { PEERDIR_PUNCH: 'off' })
    log('40 MB between two homes, the relay introducing them ...')
    const punched = await get('punched-getter', files[1], {})
    relay.child.kill('SIGKILL')
    const rate = (r: { seconds: number }) => size / (1024 * 1024) / r.seconds
    const carried = (r: { relayBytes: number }) => `${(r.relayBytes / MB).toFixed(2)} MB`
    log(
      `relayed ${r1(relayed.seconds)} s (${carried(relayed)} through the relay), punched ${r1(punched.seconds)} s (${carried(punched)})`,
    )
    return [
      {
        key: 'punched_two_nats_40MB',
        value: rate(punched),
        unit: 'MiB/s',
        versus: 'the same two peers through the relay only',
        ratio: rate(punched) / rate(relayed),
        note: `40 MB, each peer behind its own NAT; through the relay's port: ${carried(punched)} punched, ${carried(relayed)} relayed (${rate(relayed).toFixed(0)} MiB/s); all processes share the two cores`,
      },
    ]
  } finally {
    net.close()
    nat.remove()
    rmSync(work, { recursive: true, force: true })
  }
}

const r1 = (seconds: number) => seconds.toFixed(2)
