// The daemon holds the directory's presence socket: a daemon killed with -9 is down at once (its TCP
// connection closes with it), not a lease later; a refused socket leaves it to heartbeats, and a dropped
// one is taken up again.
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { type DirectoryProcess, startDirectoryProcess } from '../support/directory-process.ts'
import { startPeer, testStateRoot, until } from '../support/peer-process.ts'

const running: { stop: (signal?: NodeJS.Signals) => Promise<unknown> }[] = []
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')))
})

const stateOf = async (directoryUrl: string, username: string) => {
  const body = (await (await fetch(`${directoryUrl}/v1/peers`)).json()) as {
    peers: { username: string; state: string }[]
  }
  return body.peers.find((peer) => peer.username === username)?.state
}
const holds = (output: string) => output.match(/holding the presence socket/g)?.length ?? 0

describe('the daemon on the presence socket', () => {
  it('is down at once when killed with -9, long before its lease would end', {
    timeout: 90_000,
  }, async () => {
    // A lease of ten minutes: a down within the bound below can only come from the closed socket.
    const directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '600' } })
    running.push(directory)
    const ines = await startPeer({ name: 'ines', directoryUrl: directory.url, stateRoot: testStateRoot() })
    running.push(ines)
    await ines.waitFor(/holding the presence socket/)
    expect(await stateOf(directory.url, 'ines')).toBe('up')
    await ines.stop('SIGKILL')
    await until(
      async () => (await stateOf(directory.url, 'ines')) === 'down',
      'the killed daemon to be down',
      20_000,
    )
  })

  it('takes the socket up again after the directory restarts', { timeout: 120_000 }, async () => {
    let directory: DirectoryProcess = await startDirectoryProcess({ env: { LEASE_SECONDS: '6' } })
    running.push(directory)
    const omar = await startPeer({ name: 'omar', directoryUrl: directory.url, stateRoot: testStateRoot() })
    running.push(omar)
    await omar.waitFor(/holding the presence socket/)
    await directory.stop('SIGKILL')
    await omar.waitFor(/presence socket closed/)
    directory = await startDirectoryProcess({
      port: directory.port,
      dbUrl: directory.dbUrl,
      env: { LEASE_SECONDS: '6' },
    })
    running.push(directory)
    const restarted = directory.url
    await until(async () => holds(omar.output()) >= 2, 'the socket held again', 60_000)
    expect(await stateOf(restarted, 'omar')).toBe('up')
  })

  it('heartbeats where a proxy refuses WebSockets, and stays up across leases', {
    timeout: 90_000,
  }, async () => {
    const directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '3' } })
    running.push(directory)
    const target = new URL(directory.url)
    // A proxy that passes HTTP through and answers every upgrade 501, as some proxies do.
    const proxy = createServer((req, res) => {
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        },
      )
      upstream.on('error', () => res.destroy())
      req.pipe(upstream)
    })
    proxy.on('upgrade', (_req, socket) =>
      socket.end('HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\n\r\n'),
    )
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    running.push({ stop: () => new Promise((resolve) => proxy.close(resolve)) })
    proxy.unref()
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
    const pia = await startPeer({ name: 'pia', directoryUrl: proxyUrl, stateRoot: testStateRoot() })
    running.push(pia)
    await pia.waitFor(/holds no presence socket here; heartbeating/)
    // Three leases on heartbeats alone.
    const lastSeenOf = async () =>
      ((await (await fetch(`${directory.url}/v1/peers`)).json()) as { peers: { lastSeen: string }[] })
        .peers[0]?.lastSeen
    const seen = new Set<string | undefined>()
    await until(
      async () => {
        expect(await stateOf(directory.url, 'pia')).toBe('up')
        seen.add(await lastSeenOf())
        return seen.size > 9
      },
      'nine heartbeats',
      60_000,
    )
    expect(holds(pia.output())).toBe(0)
  })
})
