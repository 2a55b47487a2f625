import { Code, ConnectError } from '@connectrpc/connect'
import { DownloadClient } from '../wire/download-client.ts'
import { peerClient } from '../wire/transport.ts'
import type { Connect } from './source-pool.ts'

/**
 * Where the credential for calling one peer comes from: a call token the directory minted for that peer
 * alone (SPEC "Tokens"), so a source never sees anything it could replay to the directory or to another
 * peer. `token` may answer undefined (not logged in, directory down): the call goes without one, which
 * only an --open source serves.
 */
export type CallCredentials = {
  token: (audience: string) => Promise<string | undefined>
  /** The audience refused `token`'s last answer: the next must be fresh. */
  refused: (audience: string) => void
}

const unauthenticated = (err: unknown) => ConnectError.from(err).code === Code.Unauthenticated

/**
 * Sources reached directly over gRPC: the manifest through Connect's client, the bytes through the
 * Download client that copies them once. Each call presents the source's own call token; one the source
 * refuses is replaced once (it expired or its session was renewed) before the call counts as failed.
 */
export function peerLinks(options: { credentials: CallCredentials; timeoutMs: number }): Connect {
  const { credentials } = options
  return (source) => {
    const headers = async () => {
      const token = await credentials.token(source.username)
      return token ? { authorization: `Bearer ${token}` } : undefined
    }
    const client = peerClient(source.url)
    const link = new DownloadClient(source.url)
    const manifestWith = async (sha256: string, signal: AbortSignal) =>
      client.getManifest({ sha256 }, { headers: await headers(), timeoutMs: options.timeoutMs, signal })
    return {
      manifest: async (sha256, signal) => {
        const m = await manifestWith(sha256, signal).catch((err: unknown) => {
          if (!unauthenticated(err) || signal.aborted) throw err
          credentials.refused(source.username)
          return manifestWith(sha256, signal)
        })
        return {
          size: Number(m.size),
          chunkSize: m.chunkSize,
          chunkHashes: m.chunkHashes.map((h) => Buffer.from(h)),
        }
      },
      async *download(call, signal) {
        for (let attempt = 0; ; attempt++) {
          let received = false
          try {
            for await (const data of link.download(call, await headers(), signal)) {
              received = true
              yield data
            }
            return
          } catch (err) {
            // A refusal comes before any byte; only then is a fresh token worth one more try.
            if (received || attempt > 0 || signal.aborted || !unauthenticated(err)) throw err
            credentials.refused(source.username)
          }
        }
      },
      close: () => link.close(),
    }
  }
}
