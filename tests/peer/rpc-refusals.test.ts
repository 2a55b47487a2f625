import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import http2 from 'node:http2'
import { join } from 'node:path'
import tls from 'node:tls'
import { create } from '@bufbuild/protobuf'
import { Code, ConnectError, createClient } from '@connectrpc/connect'
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  PeerService,
  UploadHeaderSchema,
  UploadRequestSchema,
} from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { SESSION_CHECK_SECONDS } from '../../peer/src/wire/auth.ts'
import { peerClient } from '../../peer/src/wire/peer-client.ts'
import { spkiFingerprint } from '../../peer/src/wire/peer-connection.ts'
import { codeOf } from '../support/connect-codes.ts'
import { type DirectoryProcess, startDirectoryProcess } from '../support/directory-process.ts'
import { type PeerProcess, sleepUntil, startPeer, testStateRoot } from '../support/peer-process.ts'

let directory: DirectoryProcess
let alice: PeerProcess
let bob: PeerProcess
const content = randomBytes(3 * 1024 * 1024 + 7)
const contentSha = createHash('sha256').update(content).digest('hex')

type Grant = { token: string; expiresAt: string }
const login = async (directoryUrl: string, username: string) => {
  const response = await fetch(`${directoryUrl}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'caller password', url: 'http://127.0.0.1:9' }),
  })
  return (await response.json()) as Grant
}
/** What a peer presents to `audience`: a call token the directory minted for that peer. */
const callGrant = async (session: string, audience: string, directoryUrl = directory.url) => {
  const response = await fetch(`${directoryUrl}/v1/call-tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${session}` },
    body: JSON.stringify({ audience }),
  })
  expect(response.status).toBe(200)
  return (await response.json()) as Grant
}
/** A fresh caller's session and call token for `audience`. */
const callerOf = async (username: string, audience: string, directoryUrl = directory.url) => {
  const session = (await login(directoryUrl, username)).token
  return { session, ...(await callGrant(session, audience, directoryUrl)) }
}
const tokenFor = async (username: string, audience: string) => (await callerOf(username, audience)).token
const auth = (token: string) => ({ headers: { authorization: `Bearer ${token}` } })

async function drain<T>(stream: AsyncIterable<T>) {
  const parts: T[] = []
  for await (const part of stream) parts.push(part)
  return parts
}

beforeAll(async () => {
  const stateRoot = testStateRoot()
  // The directory's own token lifetimes: sessions used across a test outlive it on any machine. The one
  // test that needs a token to expire has a directory of its own.
  directory = await startDirectoryProcess()
  alice = await startPeer({ name: 'alice', directoryUrl: directory.url, stateRoot })
  writeFileSync(join(alice.dir, 'data.bin'), content)
  await alice.waitFor(/published changes: \+1/)
  bob = await startPeer({
    name: 'bob',
    directoryUrl: directory.url,
    stateRoot,
    args: ['--accept-uploads', '--max-upload-size', '1M'],
  })
}, 60_000)
afterAll(async () => {
  await Promise.all([alice?.stop('SIGKILL'), bob?.stop('SIGKILL'), directory?.stop('SIGKILL')])
})

describe('PeerService refusals', () => {
  it('serves a caller with a call token for it', async () => {
    const token = await tokenFor('caller', 'alice')
    const client = peerClient(alice)
    const manifest = await client.getManifest({ sha256: contentSha }, auth(token))
    expect(Number(manifest.size)).toBe(content.length)
    expect(manifest.chunkHashes).toHaveLength(4)
    const parts = await drain(
      client.download({ sha256: contentSha, offset: 10n, length: 1000n }, auth(token)),
    )
    expect(Buffer.concat(parts.map((p) => p.data))).toEqual(content.subarray(10, 1010))
  })

  it('refuses GetInfo and Download without a token, with a forged, another network’s, a session, another peer’s or a logged-out token', async () => {
    const client = peerClient(alice)
    // Both calls, Download through the daemon's own fast path: no bytes may come before the refusal.
    const codesFor = async (token?: string) => {
      const options = token === undefined ? {} : auth(token)
      const info = await codeOf(client.getInfo({}, options))
      let received = 0
      const download = await codeOf(
        (async () => {
          for await (const part of client.download({ sha256: contentSha, offset: 0n, length: 10n }, options))
            received += part.data.length
        })(),
      )
      return [info, download, received]
    }
    const refused = [Code.Unauthenticated, Code.Unauthenticated, 0]
    expect(await codesFor()).toEqual(refused)
    expect(await codesFor('not.a.jwt')).toEqual(refused)
    // A real call token for alice, signed by another directory's key: valid anywhere but here.
    const elsewhere = await startDirectoryProcess()
    try {
      await login(elsewhere.url, 'alice')
      expect(await codesFor((await callerOf('caller', 'alice', elsewhere.url)).token)).toEqual(refused)
    } finally {
      await elsewhere.stop('SIGKILL')
    }
    const caller = await callerOf('caller', 'alice')
    expect(await codesFor(caller.token)).toEqual(['ok', 'ok', 10])
    // The session token is the directory's alone; a call token for bob is bob's alone.
    expect(await codesFor(caller.session)).toEqual(refused)
    const forBob = await callGrant(caller.session, 'bob')
    expect(await codesFor(forBob.token)).toEqual(refused)
    expect(await codeOf(peerClient(bob).getInfo({}, auth(forBob.token)))).toBe('ok')
    // The case of the name does not matter, as for every username.
    expect(await codesFor((await callGrant(caller.session, 'ALICE')).token)).toEqual(['ok', 'ok', 10])

    const leaver = await callerOf('leaver', 'alice')
    await fetch(`${directory.url}/v1/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${leaver.session}` },
    })
    expect(await codesFor(leaver.token)).toEqual(refused)
  })

  it('refuses GetInfo and Download with an expired call token it served before', async () => {
    // Call tokens live as long as the directory's tokens: 3 s at this one.
    const brief = await startDirectoryProcess({ env: { TOKEN_TTL_SECONDS: '3' } })
    const server = await startPeer({ name: 'brief', directoryUrl: brief.url, stateRoot: testStateRoot() })
    try {
      const client = peerClient(server)
      const codesFor = async (token: string) => [
        await codeOf(client.getInfo({}, auth(token))),
        await codeOf(drain(client.download({ sha256: contentSha, offset: 0n, length: 10n }, auth(token)))),
      ]
      const expiring = await callerOf('sleeper', 'brief', brief.url)
      // Not shared there: served up to the content's lookup, which is past the token check.
      expect(await codesFor(expiring.token)).toEqual(['ok', Code.NotFound])
      // A JWT's exp counts whole seconds: one more second and it is past on any reading of the clock.
      await sleepUntil(Date.parse(expiring.expiresAt) + 1000)
      expect(await codesFor(expiring.token)).toEqual([Code.Unauthenticated, Code.Unauthenticated])
    } finally {
      await server.stop('SIGKILL')
      await brief.stop('SIGKILL')
    }
  })

  it('survives a request whose :authority is no host, answering 400, and serves on', async () => {
    // A foreign client: TLS without a CA (the key is what to check; see the foreign-client test below).
    const session = http2.connect(alice.url, { rejectUnauthorized: false })
    try {
      // nghttp2 lets these through (it refuses spaces and control characters itself); URL refuses them.
      for (const authority of ['a:b:c', 'host:99999999', '[::1', 'x:-1']) {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/peerdir.v1.PeerService/GetInfo',
          ':authority': authority,
          'content-type': 'application/grpc',
        })
        stream.end()
        const status = await new Promise<number>((resolve, reject) => {
          stream.once('response', (headers) => resolve(Number(headers[':status'])))
          stream.once('error', reject)
        })
        stream.resume()
        expect(status, authority).toBe(400)
      }
    } finally {
      session.close()
    }
    expect(alice.child.exitCode).toBeNull()
    expect(await codeOf(peerClient(alice).getInfo({}, auth(await tokenFor('caller', 'alice'))))).toBe('ok')
  })

  it('refuses a token within SESSION_CHECK_SECONDS of its logout, even one it served before', async () => {
    // Tokens here live for an hour, so only the logout can be why the last call is refused.
    const longLived = await startDirectoryProcess({ env: { TOKEN_TTL_SECONDS: '3600' } })
    const server = await startPeer({ name: 'host', directoryUrl: longLived.url, stateRoot: testStateRoot() })
    try {
      const { session, token } = await callerOf('quitter', 'host', longLived.url)
      const client = peerClient(server)
      expect(await codeOf(client.getInfo({}, auth(token)))).toBe('ok')
      // The host cached "open" when it answered, so that answer holds until SESSION_CHECK_SECONDS after now.
      const cachedUntil = Date.now() + SESSION_CHECK_SECONDS * 1000
      await fetch(`${longLived.url}/v1/logout`, {
        method: 'POST',
        headers: { authorization: `Bearer ${session}` },
      })
      await sleepUntil(cachedUntil + 100)
      const refused = await client.getInfo({}, auth(token)).catch((err) => ConnectError.from(err))
      expect(refused).toBeInstanceOf(ConnectError)
      expect((refused as ConnectError).code).toBe(Code.Unauthenticated)
      expect((refused as ConnectError).rawMessage).toMatch(/logged out/)
    } finally {
      await server.stop('SIGKILL')
      await longLived.stop('SIGKILL')
    }
  }, 40_000)

  it('refuses content it does not share, bad hashes, and ranges outside the file', async () => {
    const token = await tokenFor('caller', 'alice')
    const client = peerClient(alice)
    expect(await codeOf(client.getManifest({ sha256: 'f'.repeat(64) }, auth(token)))).toBe(Code.NotFound)
    expect(await codeOf(client.getManifest({ sha256: '../../etc/passwd' }, auth(token)))).toBe(
      Code.InvalidArgument,
    )
    const size = BigInt(content.length)
    expect(
      await codeOf(
        drain(client.download({ sha256: contentSha, offset: size + 1n, length: 0n }, auth(token))),
      ),
    ).toBe(Code.OutOfRange)
    expect(
      await codeOf(
        drain(client.download({ sha256: contentSha, offset: size - 5n, length: 10n }, auth(token))),
      ),
    ).toBe(Code.OutOfRange)
    expect(
      await codeOf(drain(client.download({ sha256: 'a'.repeat(64), offset: 0n, length: 1n }, auth(token)))),
    ).toBe(Code.NotFound)
  })

  it('answers GetInfo over gRPC, gRPC-web and Connect on one port, HTTP/2 and HTTP/1.1, to foreign clients over TLS', async () => {
    const token = await tokenFor('caller', 'alice')
    // A foreign client as the README shows it: TLS with no CA ("insecure"), and the key checked against
    // the directory's listing, here by the certificate the port presents.
    expect(await presentedKey(alice.port)).toBe(alice.key)
    const nodeOptions = { rejectUnauthorized: false }
    const transports = [
      createConnectTransport({ baseUrl: alice.url, httpVersion: '2', nodeOptions }),
      createConnectTransport({ baseUrl: alice.url, httpVersion: '1.1', nodeOptions }),
      createGrpcWebTransport({ baseUrl: alice.url, httpVersion: '2', nodeOptions }),
      createGrpcWebTransport({ baseUrl: alice.url, httpVersion: '1.1', nodeOptions }),
    ]
    for (const transport of transports) {
      const info = await createClient(PeerService, transport).getInfo({}, auth(token))
      expect(info).toMatchObject({ username: 'alice', files: 1 })
    }
    expect(await peerClient(alice).getInfo({}, auth(token))).toMatchObject({ username: 'alice' })
  })
})

describe('uploads', () => {
  const upload = (
    url: PeerProcess,
    token: string,
    header: { name: string; size: number; sha256: string },
    data: Buffer[],
  ) => {
    async function* parts() {
      yield create(UploadRequestSchema, {
        part: { case: 'header', value: create(UploadHeaderSchema, { ...header, size: BigInt(header.size) }) },
      })
      for (const chunk of data) yield create(UploadRequestSchema, { part: { case: 'data', value: chunk } })
    }
    return peerClient(url).upload(parts(), auth(token))
  }
  const small = Buffer.from('a small gift\n')
  const smallSha = createHash('sha256').update(small).digest('hex')
  const inbox = () => (existsSync(join(bob.dir, 'inbox')) ? readdirSync(join(bob.dir, 'inbox')) : [])

  it('is refused by a peer without --accept-uploads', async () => {
    const token = await tokenFor('caller', 'alice')
    const code = await codeOf(
      upload(alice, token, { name: 'x.txt', size: small.length, sha256: smallSha }, [small]),
    )
    expect(code).toBe(Code.PermissionDenied)
    expect(existsSync(join(alice.dir, 'inbox'))).toBe(false)
  })

  it('refuses bytes that do not match the header, path names and oversize, keeping nothing', async () => {
    const token = await tokenFor('caller', 'bob')
    const wrong = await codeOf(
      upload(bob, token, { name: 'x.txt', size: small.length, sha256: 'b'.repeat(64) }, [small]),
    )
    expect(wrong).toBe(Code.DataLoss)
    for (const name of ['../x', '/etc/x', '..', 'a/b', '.hidden']) {
      const code = await codeOf(upload(bob, token, { name, size: small.length, sha256: smallSha }, [small]))
      expect(code, name).toBe(Code.InvalidArgument)
    }
    const big = await codeOf(
      upload(bob, token, { name: 'big.bin', size: 2 * 1024 * 1024, sha256: smallSha }, []),
    )
    expect(big).toBe(Code.ResourceExhausted)
    const short = await codeOf(
      upload(bob, token, { name: 'short.txt', size: 100, sha256: smallSha }, [small]),
    )
    expect(short).toBe(Code.DataLoss)
    expect(inbox()).toEqual([])
    expect(existsSync(join(bob.dir, '..', 'x'))).toBe(false)
  })

  it('keeps a verified upload in the inbox and shares it', async () => {
    const token = await tokenFor('caller', 'bob')
    const answer = await upload(bob, token, { name: 'gift.txt', size: small.length, sha256: smallSha }, [
      small,
    ])
    expect(answer.sha256).toBe(smallSha)
    expect(inbox()).toEqual(['gift.txt'])
    const files = JSON.parse((await bob.cli(['files', '--json'])).stdout)
    expect(files.files.map((f: { name: string }) => f.name)).toContain('gift.txt')
  })
})

describe('a download that outlives its call tokens', () => {
  it('renews the downloader’s call token as it goes, so later calls are not refused as expired', async () => {
    // 5 MiB at 1 MiB/s: four calls at a time take turns at the rate, so the fifth chunk's call starts about
    // 4 s after the first, its first token (3 s) expired by then.
    const long = randomBytes(5 * 1024 * 1024)
    const stateRoot = testStateRoot()
    const slow = await startPeer({
      name: 'slow',
      directoryUrl: directory.url,
      stateRoot,
      args: ['--max-upload-rate', '1M'],
    })
    try {
      writeFileSync(join(slow.dir, 'long.bin'), long)
      await slow.waitFor(/published changes: \+1/)
      const got = await bob.cli(['get', 'long.bin', '--json'])
      expect(got.code, got.stderr).toBe(0)
      expect(JSON.parse(got.stdout).bytesPerSource).toEqual({ slow: long.length })
    } finally {
      await slow.stop('SIGKILL')
      for (const dir of [slow.dir, stateRoot]) rmSync(dir, { recursive: true, force: true })
    }
  })
})

/** The key the certificate on `port` carries, as the directory lists keys (sha256/ of its SPKI). */
function presentedKey(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'] },
      () => {
        const certificate = socket.getPeerX509Certificate()
        socket.destroy()
        if (certificate) resolve(spkiFingerprint(certificate))
        else reject(new Error('no certificate'))
      },
    )
    socket.on('error', reject)
  })
}
