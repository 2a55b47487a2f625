// The relay's table of registered peers against the directory's app served on loopback, with a clock
// the test moves: which registrations its caps let in (per address, and the room kept for peers it
// carried before), and which links its session checks drop (a peer whose session is open but not up).
import http2 from 'node:http2'
import { decodeJwt } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RelayedPeers } from '../../peer/src/relay/relayed-peers.ts'
import { DirectoryClient } from '../../peer/src/wire/directory-client.ts'
import { createTestDirectory, serveTestDirectory, type TestDirectory } from '../support/directory-app.ts'
import { listen } from '../support/ports.ts'

const LEASE_SECONDS = 30
let directory: TestDirectory
let served: Awaited<ReturnType<typeof serveTestDirectory>>
let stub: http2.Http2Server
let stubPort = 0
const sessions: http2.ClientHttp2Session[] = []
beforeAll(async () => {
  directory = createTestDirectory({ LEASE_SECONDS: String(LEASE_SECONDS) })
  served = await serveTestDirectory(directory)
  stub = http2.createServer()
  stubPort = await listen(stub)
})
afterAll(async () => {
  for (const session of sessions) session.destroy()
  await new Promise((resolve) => stub.close(resolve))
  await served?.close()
  directory?.close()
})

/** A registrant with a real session: logged in with a url (up for a lease), or as a viewer. */
async function registrant(username: string, asPeer = true) {
  const login = async (body: Record<string, string>) => {
    const response = await directory.request('/v1/login', { method: 'POST', json: body })
    return ((await response.json()) as { token: string }).token
  }
  let token = await login({ username, password: 'correct horse', url: 'http://127.0.0.1:9' })
  if (!asPeer) token = await login({ username, password: 'correct horse' })
  const { sid, iat } = decodeJwt(token)
  return { username, sessionId: sid as string, token, issuedAt: iat ?? 0 }
}

function link() {
  const session = http2.connect(`http://127.0.0.1:${stubPort}`)
  session.on('error', () => {})
  sessions.push(session)
  return session
}

describe('the relay’s registered peers', () => {
  it('caps links per address and keeps a quarter of the places for peers it carried before', async () => {
    const peers = new RelayedPeers(
      { maxPeers: 4, maxPeersPerAddress: 2, maxStreamsPerPeer: 8, peerRate: undefined },
      new DirectoryClient(served.url),
      () => {},
    )
    try {
      const veteran = link()
      peers.add(await registrant('veteran'), veteran, '203.0.113.1')
      await peers.checkSessions() // up: from now on a peer this relay has carried
      veteran.destroy()
      await new Promise((resolve) => veteran.once('close', resolve))
      expect(peers.size).toBe(0)

      peers.add(await registrant('fresh1'), link(), '198.51.100.1')
      peers.add(await registrant('fresh2'), link(), '198.51.100.1')
      expect(peers.capped('fresh3', '198.51.100.1')).toMatch(/most peers from your address \(2\)/)
      expect(peers.capped('fresh1', '198.51.100.1')).toBeUndefined() // registering again replaces
      peers.add(await registrant('fresh3'), link(), '2001:db8::/64')
      // Three of four places taken by names never carried: newcomers are full, the veteran is not.
      expect(peers.capped('fresh4', '192.0.2.1')).toMatch(/most peers \(4\)/)
      expect(peers.capped('veteran', '192.0.2.1')).toBeUndefined()
    } finally {
      peers.stop()
    }
  })

  it('drops a link whose peer is not up, though its session is open', async () => {
    const logs: string[] = []
    const peers = new RelayedPeers(
      { maxPeers: 4, maxPeersPerAddress: 4, maxStreamsPerPeer: 8, peerRate: undefined },
      new DirectoryClient(served.url),
      (line) => logs.push(line),
    )
    try {
      peers.add(await registrant('lapsed'), link(), '203.0.113.2')
      peers.add(await registrant('watcher', false), link(), '203.0.113.3')
      await peers.checkSessions()
      expect(peers.get('lapsed')).toBeDefined()
      expect(peers.get('watcher')).toBeUndefined() // a viewer session has no peer up
      // Its session stays open; its lease is not renewed, and runs out.
      directory.clock.advance(LEASE_SECONDS + 1)
      await peers.checkSessions()
      expect(peers.get('lapsed')).toBeUndefined()
      expect(logs).toContain('lapsed dropped: it is no longer up in the directory')
    } finally {
      peers.stop()
    }
  })
})
