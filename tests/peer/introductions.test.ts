import http from 'node:http'
import http2 from 'node:http2'
import { afterEach, describe, expect, it } from 'vitest'
import type { Relay } from '../../peer/src/relay/relay-server.ts'
import { INTRODUCE_PATH, PUNCH_PATH, PUNCH_TO_HEADER } from '../../peer/src/wire/relay-protocol.ts'
import { listen } from '../support/ports.ts'
import { startRelayInProcess } from '../support/relay-in-process.ts'

// The relay's introductions, in process, against stubs of relayed peers (HTTP/2 servers the relay holds
// client sessions to, as on registered links, answering its punch requests): what it tells each side,
// and what it refuses. No directory is needed: an introduction carries no token.

const stops: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop()
})

/** A relay carrying `names`, each a stub that takes every punch and notes where it was told to dial. */
async function relayWithStubs(names: string[], punchStatus = 200) {
  const punchedTo: string[] = []
  const stub = http2.createServer()
  stub.on('stream', (stream, headers) => {
    if (headers[':path'] === PUNCH_PATH) punchedTo.push(String(headers[PUNCH_TO_HEADER]))
    stream.respond({ ':status': punchStatus }, { endStream: true })
  })
  const stubPort = await listen(stub)
  const relay = await startRelayInProcess()
  const links: http2.ClientHttp2Session[] = []
  for (const username of names) {
    const link = http2.connect(`http://127.0.0.1:${stubPort}`)
    await new Promise((resolve) => link.once('connect', resolve))
    links.push(link)
    relay.adopt({ username, sessionId: `sid-${username}`, token: 'unused', issuedAt: 0 }, link, 'stub')
  }
  stops.push(async () => {
    for (const link of links) link.destroy()
    await relay.stop()
    await new Promise<void>((resolve) => stub.close(() => resolve()))
  })
  return { relay, punchedTo, stubPort, links }
}

/** An introduction asked over HTTP/1.1: its status, body and the local port it was asked from. */
function introduce(relay: Relay, name: string, method = 'POST') {
  return new Promise<{ status: number; body: string; fromPort: number }>((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: relay.port, method, path: `${INTRODUCE_PATH}${name}`, agent: false },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (part: string) => {
          body += part
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fromPort: fromPort ?? 0 }))
      },
    )
    let fromPort: number | undefined
    req.on('socket', (socket) => socket.on('connect', () => (fromPort = socket.localPort)))
    req.on('error', reject)
    req.end()
  })
}

describe('a relay introducing callers to its peers', () => {
  it('tells the peer where the caller is and the caller where the peer’s link is, each as the relay saw them', async () => {
    const { relay, punchedTo, stubPort } = await relayWithStubs(['alice'])
    const asked = await introduce(relay, 'alice')
    expect(asked.status).toBe(200)
    const answer = JSON.parse(asked.body) as { address: string; port: number; roundTripMs: number }
    // The peer's link as the relay sees it (here the stub's port: the test dialled the link for it).
    expect(answer).toMatchObject({ address: '127.0.0.1', port: stubPort })
    expect(answer.roundTripMs).toBeGreaterThanOrEqual(0)
    expect(punchedTo).toEqual([`127.0.0.1:${asked.fromPort}`])
    const metrics = await (await fetch(`http://127.0.0.1:${relay.port}/metrics`)).text()
    expect(metrics).toContain('peerdir_relay_introductions_total{outcome="introduced"} 1')
  })

  it('refuses a peer it does not carry, a bad ask and a peer that declines, telling the peer nothing more', async () => {
    const { relay, punchedTo } = await relayWithStubs(['alice'], 403)
    expect((await introduce(relay, 'nobody')).status).toBe(404)
    expect((await introduce(relay, 'alice', 'GET')).status).toBe(400)
    expect((await introduce(relay, 'no%20such')).status).toBe(400)
    const declined = await introduce(relay, 'alice')
    expect(declined.status).toBe(503)
    expect(declined.body).toContain('the peer did not take the introduction (403)')
    expect(punchedTo).toHaveLength(1)
  })

  it('introduces one peer four times within a punch’s time, and one caller address 60 times a minute', async () => {
    const names = Array.from({ length: 16 }, (_, i) => `peer${i}`)
    const { relay, punchedTo } = await relayWithStubs(names)
    for (let i = 0; i < 4; i++) expect((await introduce(relay, 'peer0')).status).toBe(200)
    const busy = await introduce(relay, 'peer0')
    expect(busy.status).toBe(429)
    expect(busy.body).toContain('peer0 is being introduced to others')
    // 5 asked so far from this address; 55 more to the other peers take its minute's share.
    for (let i = 0; i < 55; i++)
      expect((await introduce(relay, names[1 + (i % 15)] as string)).status).toBe(200)
    const over = await introduce(relay, 'peer15')
    expect(over.status).toBe(429)
    expect(over.body).toContain('at most 60 introductions a minute from one address')
    expect(punchedTo).toHaveLength(59)
  })
})
