import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { create } from '@bufbuild/protobuf'
import { Code } from '@connectrpc/connect'
import { describe, expect, it } from 'vitest'
import { UploadHeaderSchema, UploadRequestSchema } from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { SESSION_CHECK_SECONDS } from '../../peer/src/wire/auth.ts'
import { peerClient } from '../../peer/src/wire/peer-client.ts'
import { codeOf } from '../support/connect-codes.ts'
import { startLyingPeer } from '../support/lying-peer.ts'
import { sleepUntil, startPeer } from '../support/peer-process.ts'
import { listen } from '../support/ports.ts'
import { useTestNetwork } from '../support/test-network.ts'

const network = useTestNetwork()

/**
 * An HTTP proxy in front of the directory that records each call as `METHOD path status body`, in the
 * order answered, and passes it on unchanged.
 */
async function recordingProxy(target: string) {
  const seen: string[] = []
  const server = createServer(async (req, res) => {
    // A plain HTTP proxy: no WebSockets (the daemon heartbeats instead of holding its presence socket).
    if (req.headers.upgrade) return void res.writeHead(501).end()
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const headers = new Headers()
    for (const [name, value] of Object.entries(req.headers))
      if (typeof value === 'string' && name !== 'host' && name !== 'connection') headers.set(name, value)
    const answer = await fetch(`${target}${req.url}`, {
      method: req.method,
      headers,
      body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
    })
    const body = Buffer.from(await answer.arrayBuffer())
    seen.push(`${req.method} ${req.url} ${answer.status} ${body.toString('utf8', 0, 200)}`)
    const passed: Record<string, string> = {}
    answer.headers.forEach((value, name) => {
      if (name !== 'content-encoding' && name !== 'transfer-encoding' && name !== 'connection')
        passed[name] = value
    })
    res.writeHead(answer.status, { ...passed, 'content-length': String(body.length) })
    res.end(body)
  })
  const port = await listen(server)
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex')

/**
 * Security issue 13: a source sees the credential its caller presents. A source that records it must get
 * nothing it can use: not the caller's index, lease or session at the directory, nor its name at another peer.
 */
describe('a source that records its callers’ credentials', () => {
  it('cannot replay them to the directory or to another peer', async () => {
    const stolen = randomBytes(300_000)
    const recorder = await startLyingPeer({
      directoryUrl: network.directoryUrl,
      username: 'recorder',
      content: stolen,
      name: 'bait.bin',
      corruptChunks: [],
    })
    network.track({ stop: () => recorder.close() })
    const victim = await network.peer('victim')
    const own = Buffer.from('the victim shares this\n')
    writeFileSync(join(victim.dir, 'own.txt'), own)
    await victim.waitFor(/published changes: \+1/)
    const bob = await network.peer('bob', { args: ['--accept-uploads'] })
    const bobs = Buffer.from('bob shares this\n')
    writeFileSync(join(bob.dir, 'bobs.txt'), bobs)
    await bob.waitFor(/published changes: \+1/)

    const got = await victim.cli(['get', sha(stolen), '--json'])
    expect(got.code, got.stderr).toBe(0)
    // A push to the recorder (which takes no uploads) shows it the push's credential too.
    const pushed = await victim.cli(['push', join(victim.dir, 'own.txt'), '--to', 'recorder'])
    expect(pushed.code).toBe(1)
    const recorded = [...new Set(recorder.authorizations())]
    expect(recorded.length).toBeGreaterThan(0)

    for (const authorization of recorded) {
      const directory = (path: string, init: RequestInit = {}) =>
        fetch(`${network.directoryUrl}${path}`, {
          ...init,
          headers: { 'content-type': 'application/json', authorization },
        })
      for (const [path, init] of [
        ['/v1/index', { method: 'PUT', body: JSON.stringify({ files: [] }) }],
        ['/v1/index', { method: 'PATCH', body: JSON.stringify({ add: [], remove: [sha(own)] }) }],
        ['/v1/heartbeat', { method: 'POST' }],
        ['/v1/logout', { method: 'POST' }],
        ['/v1/session', {}],
        ['/v1/call-tokens', { method: 'POST', body: JSON.stringify({ audience: 'bob' }) }],
      ] as const) {
        const response = await directory(path, init)
        expect(response.status, `${init.method ?? 'GET'} ${path}`).toBe(401)
        expect((await response.json()).error.code).toBe('call_token')
      }

      const options = { headers: { authorization } }
      const client = peerClient(bob)
      expect(await codeOf(client.getInfo({}, options))).toBe(Code.Unauthenticated)
      expect(await codeOf(client.getManifest({ sha256: sha(bobs) }, options))).toBe(Code.Unauthenticated)
      let received = 0
      const download = codeOf(
        (async () => {
          for await (const part of client.download({ sha256: sha(bobs), offset: 0n, length: 4n }, options))
            received += part.data.length
        })(),
      )
      expect(await download).toBe(Code.Unauthenticated)
      expect(received).toBe(0)
      const gift = Buffer.from('pushed in the victim’s name\n')
      async function* parts() {
        yield create(UploadRequestSchema, {
          part: {
            case: 'header',
            value: create(UploadHeaderSchema, {
              name: 'gift.txt',
              size: BigInt(gift.length),
              sha256: sha(gift),
            }),
          },
        })
        yield create(UploadRequestSchema, { part: { case: 'data', value: gift } })
      }
      expect(await codeOf(client.upload(parts(), options))).toBe(Code.Unauthenticated)
    }

    // The victim is untouched: still up, still the holder of its file.
    const found = await fetch(`${network.directoryUrl}/v1/files/${sha(own)}`)
    expect(found.status).toBe(200)
    expect((await found.json()).sources.map((s: { username: string }) => s.username)).toContain('victim')
    const status = JSON.parse((await victim.cli(['status', '--json'])).stdout)
    expect(status.state).toBe('up')
  }, 60_000)

  it('a downloader replaces the call token a source refuses (its session ended) and downloads on', async () => {
    // Both daemons reach the directory through a recorder, so the refusal's cause (the source asking about
    // the caller's old session) and the fetcher's new call token can be seen, in order.
    const directory = network.track(await recordingProxy(network.directoryUrl))
    const peer = (name: string) =>
      startPeer({ name, directoryUrl: directory.url, stateRoot: network.stateRoot }).then(network.track)
    const source = await peer('source')
    const first = Buffer.from('first file\n')
    writeFileSync(join(source.dir, 'first.txt'), first)
    await source.waitFor(/published changes: \+1/)
    const fetcher = await peer('fetcher')
    expect((await fetcher.cli(['get', sha(first), '--json'])).code).toBe(0)
    const mints = () => directory.seen.filter((call) => call.startsWith('POST /v1/call-tokens 200')).length
    expect(mints()).toBe(1)
    // The source checked the fetcher's session just now and trusts that answer SESSION_CHECK_SECONDS.
    const trustedUntil = Date.now() + SESSION_CHECK_SECONDS * 1000
    // A new session: the call token the fetcher keeps for the source names the one just logged out.
    expect((await fetcher.cli(['logout'])).code).toBe(0)
    expect((await fetcher.cli(['login'])).code).toBe(0)
    const sinceLogin = directory.seen.length
    const second = Buffer.from('second file\n')
    writeFileSync(join(source.dir, 'second.txt'), second)
    await source.waitFor(/published changes: \+1/)
    await sleepUntil(trustedUntil + 500)
    const got = await fetcher.cli(['get', sha(second), '--json'])
    expect(got.code, got.stderr).toBe(0)
    // The kept token was presented and refused (the source learnt its session is closed), then one
    // new token was minted and taken.
    const after = directory.seen.slice(sinceLogin)
    const refusedAt = after.findIndex((call) => /^GET \/v1\/sessions\/\S+ 200 \{"open":false/.test(call))
    expect(refusedAt, after.join('\n')).toBeGreaterThanOrEqual(0)
    expect(after.slice(refusedAt).filter((call) => call.startsWith('POST /v1/call-tokens 200'))).toHaveLength(
      1,
    )
    expect(mints()).toBe(2)
  }, 60_000)
})
