import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { RelayLink } from '../../peer/src/daemon/relay-link.ts'
import { closeServer, listen } from '../support/ports.ts'
import { until } from '../support/waiting.ts'

const stops: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop()
})

/** A call token's shape (the link reads only its iat and exp to time the next registration). */
function tokenLike() {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  return `${part({ alg: 'EdDSA' })}.${part({ iat: now, exp: now + 300 })}.c2ln`
}

/**
 * A relay that takes the first registration and holds it; every later one it closes unanswered, and it
 * drops the held link at the same moment (as a relay killed while a registration is on its way).
 */
async function relayThatDiesOnRenewal() {
  const sockets: net.Socket[] = []
  let registrations = 0
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    sockets.push(socket)
    socket.once('data', () => {
      registrations++
      if (registrations === 1) {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n\r\n')
        return
      }
      for (const held of sockets) held.destroy()
    })
  })
  const port = await listen(server)
  stops.push(() => closeServer(server, sockets))
  return { url: `http://127.0.0.1:${port}`, registrations: () => registrations }
}

describe('the relay link', () => {
  it('says the link is lost when the relay goes away while it registers again', async () => {
    const relay = await relayThatDiesOnRenewal()
    const linked: boolean[] = []
    const link = new RelayLink({
      relayUrl: relay.url,
      username: 'linked',
      token: async () => tokenLike(),
      lost: async () => {},
      serve: (socket) => void socket.resume(),
      log: () => {},
      onLink: (up) => linked.push(up),
    })
    stops.push(() => link.stop())
    link.start()
    await until(async () => linked.length === 1, 'the first registration')
    // `peer login` wakes the link to register with the new session's token.
    link.retryNow()
    await until(async () => relay.registrations() === 2, 'the second registration')
    await until(async () => linked.length === 2, 'the link said lost')
    expect(linked).toEqual([true, false])
    expect(link.connected).toBe(false)
  })
})
