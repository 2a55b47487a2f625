import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { netnsUnavailable } from './network-namespace.ts'
import { commandUnavailable } from './requirements.ts'

/** Why home routers cannot be made here (namespaces, iptables), or undefined when they can. */
export function natUnavailable(): string | undefined {
  return netnsUnavailable() ?? commandUnavailable('iptables', ['--version'], 'iptables')
}

/** A machine behind a home router: its namespace, and the router's public address its NAT maps it to. */
export type Home = {
  /** Runs a command on the home machine (a `wrap` for startPeer). */
  wrap: string[]
  /** The router's address on the public side: the one the relay sees this machine's connections come from. */
  publicAddress: string
  /** Makes the router's NAT symmetric (a random public port for every connection) or port-preserving again. */
  symmetric: (on: boolean) => void
}

export type NatNetwork = {
  /** This machine's address on the public side: where the directory and the relay listen. */
  publicHost: string
  homes: [Home, Home]
  /** Counts every byte to and from `port` on the public host crossing the public side from now on. */
  countPort: (port: number) => () => number
  remove: () => void
}

/**
 * Two home networks, each behind a router that masquerades (NAT) and drops whatever arrives unasked, as
 * home routers do, joined by an "internet" namespace that routes between them and this machine:
 *
 *   home A ─ router A ─┐
 *                      internet ─ this machine (directory, relay)
 *   home B ─ router B ─┘
 *
 * Only what a home dials out reaches it; nothing here can dial a home. Every address is in a /24 made
 * for this network alone.
 */
export function natNetwork(): NatNetwork {
  const id = randomBytes(2).toString('hex')
  const octet = 1 + (Number.parseInt(id, 16) % 250)
  const internet = `pn-${id}-i`
  const ns = (name: string) => `pn-${id}-${name}`
  const ip = (...args: string[]) => execFileSync('ip', args)
  const inNs = (name: string, ...command: string[]) => execFileSync('ip', ['netns', 'exec', name, ...command])
  const publicHost = `10.214.${octet}.2`
  const made: string[] = []
  const remove = () => {
    spawnSync('ip', ['link', 'del', `pn${id}h`])
    for (const name of made) spawnSync('ip', ['netns', 'del', name])
  }
  try {
    ip('netns', 'add', internet)
    made.push(internet)
    ip('link', 'add', `pn${id}h`, 'type', 'veth', 'peer', 'name', `pn${id}i`)
    ip('link', 'set', `pn${id}i`, 'netns', internet)
    ip('addr', 'add', `${publicHost}/24`, 'dev', `pn${id}h`)
    ip('link', 'set', `pn${id}h`, 'up')
    ip('-n', internet, 'addr', 'add', `10.214.${octet}.1/24`, 'dev', `pn${id}i`)
    ip('-n', internet, 'link', 'set', `pn${id}i`, 'up')
    inNs(internet, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
    const homes = (['a', 'b'] as const).map((side, i): Home => {
      const wan = `10.${215 + i}.${octet}`
      const router = ns(`r${side}`)
      const home = ns(side)
      for (const name of [router, home]) {
        ip('netns', 'add', name)
        made.push(name)
        ip('-n', name, 'link', 'set', 'lo', 'up')
      }
      // The public side: router ─ internet, and this machine's way back to the router.
      ip('-n', internet, 'link', 'add', `w${side}`, 'type', 'veth', 'peer', 'name', 'wan', 'netns', router)
      ip('-n', internet, 'addr', 'add', `${wan}.1/24`, 'dev', `w${side}`)
      ip('-n', internet, 'link', 'set', `w${side}`, 'up')
      ip('-n', router, 'addr', 'add', `${wan}.2/24`, 'dev', 'wan')
      ip('-n', router, 'link', 'set', 'wan', 'up')
      ip('-n', router, 'route', 'add', 'default', 'via', `${wan}.1`)
      ip('route', 'add', `${wan}.0/24`, 'via', `10.214.${octet}.1`)
      // The home side: home ─ router, the router its default route.
      ip('-n', router, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', home)
      ip('-n', router, 'addr', 'add', '192.168.1.1/24', 'dev', 'lan')
      ip('-n', router, 'link', 'set', 'lan', 'up')
      ip('-n', home, 'addr', 'add', '192.168.1.2/24', 'dev', 'eth0')
      ip('-n', home, 'link', 'set', 'eth0', 'up')
      ip('-n', home, 'route', 'add', 'default', 'via', '192.168.1.1')
      // The router: masquerades what goes out, lets in only what answers it (to the home or to itself).
      inNs(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
      const masquerade = (symmetric: boolean) => [
        ...['-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE'],
        ...(symmetric ? ['--random-fully'] : []),
      ]
      inNs(router, 'iptables', ...masquerade(false))
      for (const chain of ['FORWARD', 'INPUT']) {
        inNs(
          router,
          'iptables',
          '-A',
          chain,
          '-i',
          'wan',
          '-m',
          'conntrack',
          '--ctstate',
          'ESTABLISHED,RELATED',
          '-j',
          'ACCEPT',
        )
        inNs(router, 'iptables', '-A', chain, '-i', 'wan', '-j', 'DROP')
      }
      return {
        wrap: ['ip', 'netns', 'exec', home],
        publicAddress: `${wan}.2`,
        symmetric: (on) => {
          inNs(router, 'iptables', '-t', 'nat', '-F', 'POSTROUTING')
          inNs(router, 'iptables', ...masquerade(on))
        },
      }
    })
    return {
      publicHost,
      homes: homes as [Home, Home],
      countPort: (port) => {
        const rules = [
          ['-d', publicHost, '-p', 'tcp', '--dport', String(port)],
          ['-s', publicHost, '-p', 'tcp', '--sport', String(port)],
        ]
        for (const rule of rules) inNs(internet, 'iptables', '-A', 'FORWARD', ...rule, '-j', 'ACCEPT')
        return () => {
          const listing = inNs(internet, 'iptables', '-L', 'FORWARD', '-v', '-x', '-n').toString()
          const mine = listing.split('\n').filter((line) => new RegExp(`[sd]pt:${port}\\b`).test(line))
          return mine.reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[1]), 0)
        }
      },
      remove,
    }
  } catch (err) {
    remove()
    throw err
  }
}
