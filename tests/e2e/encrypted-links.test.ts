import { createHash, generateKeyPairSync, randomBytes, randomInt } from 'node:crypto'
import { rmSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import tls from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { selfSignedCertificate } from '../../peer/src/daemon/self-signed-certificate.ts'
import { peerClient } from '../../peer/src/wire/peer-client.ts'
import { PeerConnection } from '../../peer/src/wire/peer-connection.ts'
import { postJson } from '../support/directory-process.ts'
import { placeFile } from '../support/peer-process.ts'
import { useTestNetwork } from '../support/test-network.ts'

/**
 * Peer links are TLS by default, pinned to the key the directory lists (README, "Encrypted links"):
 * what crosses a pipe in the path is ciphertext, the address is not what is trusted, a man in the
 * middle with a certificate of its own is refused before any request or token reaches it, and a call
 * token is good only at the key it names.
 */
const network = useTestNetwork()
const content = randomBytes(3 * 1024 * 1024 + 7)
const contentSha = createHash('sha256').update(content).digest('hex')
const closers: (() => void)[] = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

type Listed = { username: string; url: string; key: string | null }
const listedPeers = async (): Promise<Listed[]> =>
  ((await (await fetch(`${network.directoryUrl}/v1/peers`)).json()) as { peers: Listed[] }).peers

/** A TCP pipe in the path to `target()`: every byte both ways is recorded, none is changed. */
async function recordingPipe(target: () => number) {
  const recorded: Buffer[] = []
  const server = net.createServer((inbound) => {
    const outbound = net.connect({ host: '127.0.0.1', port: target() })
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      from.on('data', (data: Buffer) => {
        recorded.push(Buffer.from(data))
        to.write(data)
      })
      from.on('error', () => to.destroy())
      from.on('close', () => to.destroy())
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => server.close())
  return { port: (server.address() as net.AddressInfo).port, bytes: () => Buffer.concat(recorded) }
}

/**
 * A man in the middle: terminates TLS with a certificate of its own (for the source's address, as a
 * stolen or mis-issued one would be), records what the caller sends in clear, and relays to `target()`.
 */
async function tlsInterceptor(target: () => number) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const cert = selfSignedCertificate(privateKey, publicKey, '127.0.0.1')
  const heard: Buffer[] = []
  const server = tls.createServer(
    { cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }), ALPNProtocols: ['h2'] },
    (inbound) => {
      const outbound = tls.connect({
        host: '127.0.0.1',
        port: target(),
        rejectUnauthorized: false,
        ALPNProtocols: ['h2'],
      })
      inbound.on('data', (data: Buffer) => {
        heard.push(Buffer.from(data))
        outbound.write(data)
      })
      outbound.on('data', (data: Buffer) => inbound.write(data))
      for (const end of [inbound, outbound]) end.on('error', () => {})
      inbound.on('close', () => outbound.destroy())
      outbound.on('close', () => inbound.destroy())
    },
  )
  server.on('tlsClientError', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => server.close())
  return { port: (server.address() as net.AddressInfo).port, heard: () => Buffer.concat(heard) }
}

describe('encrypted peer links', () => {
  it('by default: listed as https:// with a key, status shows it, and a download over TLS works', async () => {
    const source = await network.peer('enc-source')
    expect(source.key).toMatch(/^sha256\/[A-Za-z0-9_-]{43}$/)
    placeFile(source.dir, 'sealed.bin', content)
    await source.waitFor(/published changes: \+1/)
    const listed = (await listedPeers()).find((p) => p.username === 'enc-source')
    expect(listed).toEqual(
      expect.objectContaining({ url: `https://127.0.0.1:${source.port}`, key: source.key }),
    )
    const status = JSON.parse((await source.cli(['status', '--json'])).stdout)
    expect(status.key).toBe(source.key)

    const fetcher = await network.peer('enc-fetcher')
    const peers = await fetcher.cli(['peers'])
    expect(peers.stdout).toMatch(/enc-source\s+up\s+\d+\s+encrypted/)
    const got = await fetcher.cli(['get', contentSha, '--json'])
    expect(got.code, got.stderr).toBe(0)
    expect(JSON.parse(got.stdout).bytesPerSource).toEqual({ 'enc-source': content.length })

    // This machine's player still reads the gateway in plain HTTP; an RPC in plaintext is refused.
    const url = (await source.cli(['url', 'sealed.bin'])).stdout.trim()
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${source.port}/content/`))
    const played = await fetch(url, { headers: { range: 'bytes=10-19' } })
    expect(Buffer.from(await played.arrayBuffer()).equals(content.subarray(10, 20))).toBe(true)
    const plainRpc = await fetch(`http://127.0.0.1:${source.port}/peerdir.v1.PeerService/GetInfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    })
    expect(plainRpc.status).toBe(426)
  })

  it('through a recording pipe in the path: works (the key is pinned, not the address), and no file byte or token crosses in clear', async () => {
    let sourcePort = 0
    const pipe = await recordingPipe(() => sourcePort)
    const source = await network.peer('piped-source', {
      args: ['--public-url', `https://127.0.0.1:${pipe.port}`],
    })
    sourcePort = source.port
    placeFile(source.dir, 'piped.bin', content)
    await source.waitFor(/published changes: \+1/)
    const fetcher = await network.peer('piped-fetcher')
    const got = await fetcher.cli(['get', contentSha, '--json'])
    expect(got.code, got.stderr).toBe(0)
    const recorded = pipe.bytes()
    expect(recorded.length).toBeGreaterThan(content.length)
    const at = randomInt(0, content.length - 64)
    expect(recorded.indexOf(content.subarray(at, at + 64))).toBe(-1)
    // A call token is a JWT: its header's base64 ({"alg":"EdDSA", the same in every token the directory
    // signs) starts so. None crossed the pipe readable. (Three characters, `eyJ`, turn up by chance in
    // about one run in five among 3 MB of ciphertext: eighteen do not.)
    expect(recorded.indexOf('eyJhbGciOiJFZERTQS')).toBe(-1)
    expect(recorded.indexOf('authorization')).toBe(-1)
  })

  it('refuses a TLS-terminating man in the middle with its own certificate (key mismatch), sending it nothing', async () => {
    let sourcePort = 0
    const mitm = await tlsInterceptor(() => sourcePort)
    const source = await network.peer('mitm-source', {
      args: ['--public-url', `https://127.0.0.1:${mitm.port}`],
    })
    sourcePort = source.port
    placeFile(source.dir, 'intercepted.bin', content)
    await source.waitFor(/published changes: \+1/)
    const fetcher = await network.peer('mitm-fetcher')
    const got = await fetcher.cli(['get', contentSha, '--json'])
    expect(got.code).toBe(3)
    expect(got.stderr).toMatch(/mitm-source: key mismatch/)
    // Nothing of HTTP reached it: no preface, no request, no token.
    expect(mitm.heard().length).toBe(0)
  })

  it('a call token is good only at the key it names: refused by another peer, by the directory, and by its peer once its key changed', async () => {
    const alice = await network.peer('key-alice')
    const bob = await network.peer('key-bob')
    const login = await postJson(`${network.directoryUrl}/v1/login`, {
      username: 'key-bob',
      password: 'password-of-key-bob',
    })
    const session = ((await login.json()) as { token: string }).token
    const mint = async () => {
      const minted = await postJson(
        `${network.directoryUrl}/v1/call-tokens`,
        { audience: 'key-alice' },
        session,
      )
      return ((await minted.json()) as { token: string }).token
    }
    const forAlice = await mint()
    const headers = { authorization: `Bearer ${forAlice}` }
    const code = (call: Promise<unknown>) =>
      call.then(
        () => 'ok',
        (err: { code?: number; rawMessage?: string }) => `${err.code}: ${err.rawMessage}`,
      )
    expect(await code(peerClient(alice).getInfo({}, { headers }))).toBe('ok')
    expect(await code(peerClient(bob).getInfo({}, { headers }))).toMatch(
      /^16: .*for key-alice, not for key-bob/,
    )
    const atDirectory = await fetch(`${network.directoryUrl}/v1/session`, { headers })
    expect(atDirectory.status).toBe(401)

    // Alice restarts on her port: the same key, so the token still works.
    const port = alice.port
    await alice.stop('SIGTERM')
    const again = await network.peer('key-alice', { port, dir: alice.dir })
    expect(again.key).toBe(alice.key)
    expect(await code(peerClient(again).getInfo({}, { headers }))).toBe('ok')

    // Her key changes (the state folder's key is gone): the old token names the old key and is refused,
    // and a downloader holding the old listing refuses her, until it looks her up again.
    await again.stop('SIGTERM')
    for (const file of ['peer-key.pem', 'peer-cert.pem']) rmSync(join(network.stateRoot, String(port), file))
    const renewed = await network.peer('key-alice', { port, dir: alice.dir })
    expect(renewed.key).not.toBe(alice.key)
    expect(await code(peerClient(renewed).getInfo({}, { headers }))).toMatch(/^16: .*key/)
    const stale = new PeerConnection({ url: renewed.url, key: alice.key })
    const refused = await code(
      peerClient(stale).getInfo({}, { headers: { authorization: `Bearer ${await mint()}` } }),
    )
    expect(refused).toMatch(/key mismatch/)
    expect(stale.refusal?.message).toMatch(/^key mismatch: /)
    const fresh = (await listedPeers()).find((p) => p.username === 'key-alice') as Listed
    expect(fresh.key).toBe(renewed.key)
    expect(
      await code(peerClient(fresh).getInfo({}, { headers: { authorization: `Bearer ${await mint()}` } })),
    ).toBe('ok')
  })

  it('--plaintext: listed as http:// with no key, and still downloads', async () => {
    const source = await network.peer('plain-source', { args: ['--plaintext'] })
    expect(source.key).toBeNull()
    placeFile(source.dir, 'open.bin', content)
    await source.waitFor(/published changes: \+1/)
    const listed = (await listedPeers()).find((p) => p.username === 'plain-source')
    expect(listed).toEqual(expect.objectContaining({ url: `http://127.0.0.1:${source.port}`, key: null }))
    const fetcher = await network.peer('plain-fetcher')
    const peers = await fetcher.cli(['peers'])
    expect(peers.stdout).toMatch(/plain-source\s+up\s+\d+\s+plaintext/)
    const got = await fetcher.cli(['get', 'open.bin', '--json'])
    expect(got.code, got.stderr).toBe(0)
  })
})
