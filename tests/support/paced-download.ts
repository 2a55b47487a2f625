import type http2 from 'node:http2'
import { create, fromBinary, toBinary } from '@bufbuild/protobuf'
import { DownloadRequestSchema, DownloadResponseSchema } from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { DOWNLOAD_PATH, envelope } from '../../peer/src/wire/grpc-wire.ts'
import { postJson } from './directory-process.ts'

/**
 * A call token for `audience`, minted for `username` (registered by this first login if it is new,
 * with `url`, an address nobody serves on), as any client of the network can ask one.
 */
export async function callTokenFor(
  directoryUrl: string,
  username: string,
  audience: string,
  url = 'http://127.0.0.1:9',
): Promise<string> {
  const password = `password-of-${username}`
  const login = async (extra: object) =>
    (
      (await (await postJson(`${directoryUrl}/v1/login`, { username, password, ...extra })).json()) as {
        token?: string
      }
    ).token
  const session = (await login({})) ?? (await login({ url }))
  if (!session) throw new Error(`${username} could not log in`)
  const minted = await postJson(`${directoryUrl}/v1/call-tokens`, { audience }, session)
  if (!minted.ok) throw new Error(`no call token for ${audience}: ${minted.status} ${await minted.text()}`)
  return ((await minted.json()) as { token: string }).token
}

export type PacedDownload = {
  /** Reads on as fast as the source sends. */
  readFreely: () => void
  /** The content's bytes once the call ends with status 0; rejects with the call's status otherwise. */
  done: Promise<Buffer>
}

/**
 * One Download call of a whole content on `session`, read at no more than `bytesPerSecond` until
 * `readFreely()`. Node's stream window is 64 KiB and a paused stream takes no more, so the source can
 * send no further ahead of the reader than that: unlike a `peer get` put to sleep (whose windows take
 * megabytes), this downloader stays in a source's upload slot for as long as a test needs it there.
 */
export function pacedDownload(
  session: http2.ClientHttp2Session,
  token: string,
  sha256: string,
  bytesPerSecond: number,
): PacedDownload {
  const stream = session.request({
    ':method': 'POST',
    ':path': DOWNLOAD_PATH,
    'content-type': 'application/grpc',
    te: 'trailers',
    authorization: `Bearer ${token}`,
  })
  stream.end(envelope(toBinary(DownloadRequestSchema, create(DownloadRequestSchema, { sha256 }))))
  const started = performance.now()
  const frames: Buffer[] = []
  let bytes = 0
  let free = false
  let resume: NodeJS.Timeout | undefined
  stream.on('data', (part: Buffer) => {
    frames.push(part)
    bytes += part.length
    if (free) return
    const due = started + (bytes / bytesPerSecond) * 1000 - performance.now()
    if (due <= 0) return
    stream.pause()
    resume = setTimeout(() => stream.resume(), due)
  })
  const done = new Promise<Buffer>((resolve, reject) => {
    // The status comes in the trailers, or in the headers of an answer that is a refusal only.
    let status = ''
    const statusOf = (headers: http2.IncomingHttpHeaders) => {
      if (headers['grpc-status'] !== undefined)
        status = `${headers['grpc-status']} ${headers['grpc-message'] ?? ''}`.trim()
    }
    stream.once('response', statusOf)
    stream.once('trailers', statusOf)
    stream.once('error', reject)
    stream.once('close', () => {
      clearTimeout(resume)
      if (status !== '0') return reject(new Error(`the download ended with status "${status}"`))
      try {
        resolve(unframed(Buffer.concat(frames)))
      } catch (err) {
        reject(err)
      }
    })
  })
  return {
    readFreely: () => {
      free = true
      clearTimeout(resume)
      stream.resume()
    },
    done,
  }
}

/** The content carried by gRPC-framed DownloadResponses, in order. */
function unframed(body: Buffer): Buffer {
  const parts: Buffer[] = []
  for (let at = 0; at < body.length; ) {
    const length = body.readUInt32BE(at + 1)
    parts.push(Buffer.from(fromBinary(DownloadResponseSchema, body.subarray(at + 5, at + 5 + length)).data))
    at += 5 + length
  }
  return Buffer.concat(parts)
}
