import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { commandUnavailable } from './requirements.ts'

/** Why network namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  return commandUnavailable('ip', ['netns', 'list'], 'iproute2')
}

export type OtherMachine = {
  /** The namespace's name, for `ip netns exec <name>`. */
  name: string
  /** This machine's address on the link: what the other machine dials to reach us. */
  hostAddress: string
  /** The other machine's address on the link. */
  address: string
  /** Runs a command in the namespace (a `wrap` for startPeer). */
  wrap: string[]
  remove: () => void
}

/**
 * Another machine: a network namespace joined to this one by a veth pair, with its own loopback (up) and
 * a private /24 on the link (nothing else routes there). What listens on the namespace's loopback cannot
 * be dialled from here, as behind a NAT; what it dials on `hostAddress` reaches us.
 */
export function otherMachine(): OtherMachine {
  const id = randomBytes(3).toString('hex')
  const name = `pd-${id}`
  const octet = 1 + (Number.parseInt(id, 16) % 250)
  const hostAddress = `10.213.${octet}.1`
  const address = `10.213.${octet}.2`
  const ip = (...args: string[]) => execFileSync('ip', args)
  ip('netns', 'add', name)
  ip('link', 'add', `pd${id}a`, 'type', 'veth', 'peer', 'name', `pd${id}b`)
  ip('link', 'set', `pd${id}b`, 'netns', name)
  ip('addr', 'add', `${hostAddress}/24`, 'dev', `pd${id}a`)
  ip('link', 'set', `pd${id}a`, 'up')
  ip('netns', 'exec', name, 'ip', 'addr', 'add', `${address}/24`, 'dev', `pd${id}b`)
  ip('netns', 'exec', name, 'ip', 'link', 'set', `pd${id}b`, 'up')
  ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up')
  return {
    name,
    hostAddress,
    address,
    wrap: ['ip', 'netns', 'exec', name],
    remove: () => {
      spawnSync('ip', ['link', 'del', `pd${id}a`])
      spawnSync('ip', ['netns', 'del', name])
    },
  }
}
