import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Interceptor } from '@connectrpc/connect'
import { HashCache } from '../../peer/src/content/hash-cache.ts'
import { ShareIndex } from '../../peer/src/content/share-index.ts'
import { peerServiceRoutes } from '../../peer/src/serve/peer-service.ts'
import { RateLimiter } from '../../peer/src/serve/rate-limit.ts'
import { startRpcServer } from '../../peer/src/wire/transport.ts'

/**
 * A peer that lies: the real PeerService over a file that was indexed honestly and then had some chunks
 * overwritten on disk, its index told the file is unchanged. Its manifest is true; the corrupted chunks' bytes are not.
 * With `stallDownloads` it claims the file and answers its manifest, but every Download call hangs,
 * sending nothing, until the caller gives up. With `publishedManifest` it tells the directory a manifest
 * other than the one its chunks make (what GetManifest answers); with `publishedSize`, a size other than
 * the file's. With `claimedSha256` it serves and publishes its file, with the file's true manifest and
 * size, as that other content: every chunk checks out against the manifest, the whole file does not.
 * Every caller's `authorization` header is recorded (`authorizations`): what a malicious source could replay.
 * With `bytesPerSecond` it serves at most that rate, as `--max-upload-rate` does.
 */
export async function startLyingPeer(options: {
  directoryUrl: string
  username: string
  content: Buffer
  name: string
  corruptChunks: number[]
  chunkSize?: number
  stallDownloads?: boolean
  publishedManifest?: string
  publishedSize?: number
  claimedSha256?: string
  bytesPerSecond?: number
}) {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-liar-'))
  const path = join(dir, options.name)
  const fd = openSync(path, 'w')
  writeSync(fd, options.content)
  closeSync(fd)
  const index = new ShareIndex(dir, new HashCache(join(dir, '.cache.json')))
  await index.scan()
  const lie = openSync(path, 'r+')
  for (const chunk of options.corruptChunks) {
    const garbage = Buffer.from('these bytes are not what the manifest promised')
    writeSync(lie, garbage, 0, garbage.length, chunk * (options.chunkSize ?? 1 << 20) + 100)
  }
  closeSync(lie)
  // Keep serving under the honest manifest: tell the index the corrupted file is the one it hashed.
  for (const file of index.files) file.mtimeMs = statSync(path).mtimeMs

  let downloadCalls = 0
  let manifestCalls = 0
  const authorizations: string[] = []
  const record: Interceptor = (next) => async (req) => {
    const header = req.header.get('authorization')
    if (header) authorizations.push(header)
    return next(req)
  }
  const count: Interceptor = (next) => async (req) => {
    if (req.method.name === 'Download') downloadCalls++
    if (req.method.name === 'GetManifest') manifestCalls++
    return next(req)
  }
  const stall: Interceptor = (next) => async (req) => {
    if (req.method.name !== 'Download') return next(req)
    await new Promise((_resolve, reject) => req.signal.addEventListener('abort', reject, { once: true }))
    return next(req)
  }
  const server = await startRpcServer({
    port: 0,
    host: '127.0.0.1',
    interceptors: options.stallDownloads ? [record, count, stall] : [record, count],
    routes: peerServiceRoutes({
      index,
      username: () => options.username,
      acceptUploads: false,
      inboxDir: join(dir, 'inbox'),
      maxUploadBytes: 0,
      inboxQuotaBytes: 0,
      limiter: options.bytesPerSecond ? new RateLimiter(options.bytesPerSecond) : undefined,
      onStale: () => {},
      onUploaded: () => {},
    }),
  })
  const url = `http://127.0.0.1:${server.port}`
  const login = await fetch(`${options.directoryUrl}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: options.username, password: 'liar password', url }),
  })
  if (!login.ok) throw new Error(`the liar could not log in: ${login.status} ${await login.text()}`)
  const grant = (await login.json()) as { token: string; leaseSeconds: number }
  let token = grant.token
  const scanned = index.files[0]
  if (!scanned) throw new Error('the liar has nothing to share')
  const file = options.claimedSha256 ? { ...scanned, sha256: options.claimedSha256 } : scanned
  if (options.claimedSha256) index.addVerified(file)
  const published = await fetch(`${options.directoryUrl}/v1/index`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      files: [
        {
          name: file.name,
          size: options.publishedSize ?? file.size,
          sha256: file.sha256,
          chunkSize: file.chunkSize,
          manifest: options.publishedManifest ?? file.manifest,
        },
      ],
    }),
  })
  if (!published.ok) throw new Error(`the liar could not publish: ${published.status}`)
  // Keep the lease as a real peer does (a third of it between beats), so the liar stays a live
  // source however long the rest of the test takes to start.
  const heartbeat = async () => {
    const beat = await fetch(`${options.directoryUrl}/v1/heartbeat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    }).catch(() => undefined)
    if (!beat?.ok) return
    const renewed = (await beat.json()) as { token?: string }
    if (renewed.token) token = renewed.token
  }
  const beating = setInterval(() => void heartbeat(), (grant.leaseSeconds * 1000) / 3)
  return {
    url,
    /** How many Download calls it has taken (a stalling peer hangs each). */
    downloadCalls: () => downloadCalls,
    /** How many GetManifest calls it has taken: one per transfer that found it. */
    manifestCalls: () => manifestCalls,
    /** The authorization headers callers presented, in order. */
    authorizations: () => [...authorizations],
    close: async () => {
      clearInterval(beating)
      // Down in the directory at once, as a daemon stopped with SIGTERM: not listed as a live source
      // of a later test until its lease runs out.
      await fetch(`${options.directoryUrl}/v1/logout`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(10_000),
      }).catch(() => undefined)
      await server.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
