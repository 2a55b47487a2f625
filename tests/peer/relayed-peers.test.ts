// The relay's table of registered peers against a real directory process: which registrations its
// caps let in (per address, and the room kept for peers it carried before), and which links its
// session checks drop (a peer whose session is open but not up).
import http2 from 'node:http2'
import { decodeJwt } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RelayedPeers } from '../../peer/src/relay/relayed-peers.ts'
import { DirectoryClient } from '../../peer/src/wire/directory-client.ts'
import { type DirectoryProcess, startDirectoryProcess } from '../support/directory-process.ts'
import { listen } from '../support/ports.ts'

let directory: DirectoryProcess
let stub: http2.Http2Server
let stubPort = 0
const sessions: http2.ClientHttp2Session[] = []
beforeAll(async () => {
  directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '3' } })
  stub = http2.createServer()
  stubPort = await listen(stub)
})
afterAll(async () => {
  for (const session of sessions) session.destroy()
  await new Promise((resolve) => stub.close(resolve))
  await directory?.stop()
})

/** A registrant with a real session: logged in with a url (up for the 3 s lease), or as a viewer. */
async function registrant(username: string, asPeer = true) {
  const response = await fetch(`${directory.url}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'correct horse', url: 'http://127.0.0.1:9' }),
  })
  let { token } = (await response.json()) as { token: string }
  if (!asPeer) {
    const viewer = await fetch(`${directory.url}/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: 'correct horse' }),
    })
    token = ((await viewer.json()) as { token: string }).token
  }
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
      new DirectoryClient(directory.url),
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
      new DirectoryClient(directory.url),
      (line) => logs.push(line),
    )
    try {
      // Its session stays open; its lease (3 s) is not renewed, so the directory lists it down.
      peers.add(await registrant('lapsed'), link(), '203.0.113.2')
      peers.add(await registrant('watcher', false), link(), '203.0.113.3')
      await peers.checkSessions()
      expect(peers.get('lapsed')).toBeDefined()
      expect(peers.get('watcher')).toBeUndefined() // a viewer session has no peer up
      const listedDown = async () => {
        const page = (await (await fetch(`${directory.url}/v1/peers?state=down`)).json()) as {
          peers: { username: string }[]
        }
        return page.peers.some((p) => p.username === 'lapsed')
      }
      for (let i = 0; i < 100 && !(await listedDown()); i++) await new Promise((r) => setTimeout(r, 100))
      await peers.checkSessions()
      expect(peers.get('lapsed')).toBeUndefined()
      expect(logs).toContain('lapsed dropped: it is no longer up in the directory')
    } finally {
      peers.stop()
    }
  })
})
