import { type CallCredentials, streamWithCallToken, withCallToken } from '../wire/call-token.ts'
import { DownloadClient } from '../wire/download-client.ts'
import { peerClient } from '../wire/peer-client.ts'
import { PeerConnection } from '../wire/peer-connection.ts'
import type { Connect } from './source-pool.ts'

export type { CallCredentials }

/**
 * Sources reached directly over gRPC: the manifest through Connect's client, the bytes through the
 * Download client that copies them once, both over connections pinned to the source's listed key
 * (peer-connection.ts: a mismatch fails the call as `key mismatch`, before any token is sent). Each call
 * presents the source's own call token; one the source refuses is replaced once (it expired or its
 * session was renewed) before the call counts as failed.
 */
export function peerLinks(options: { credentials: CallCredentials; timeoutMs: number }): Connect {
  const { credentials } = options
  return (source) => {
    const connection = new PeerConnection(source)
    const client = peerClient(connection)
    const link = new DownloadClient(connection)
    // A relayed source: punched at beside the manifest call, so its bytes can flow directly from early on.
    void connection.punch()
    const failed = (err: unknown): never => {
      throw connection.explain(err)
    }
    return {
      manifest: async (sha256, signal) => {
        const m = await withCallToken(
          credentials,
          source.username,
          (headers) => client.getManifest({ sha256 }, { headers, timeoutMs: options.timeoutMs, signal }),
          { signal, failed },
        )
        return {
          size: Number(m.size),
          chunkSize: m.chunkSize,
          chunkHashes: m.chunkHashes.map((h) => Buffer.from(h)),
        }
      },
      download: (call, signal) =>
        explained(
          connection,
          streamWithCallToken(
            credentials,
            source.username,
            (headers) => link.download(call, headers, signal),
            signal,
          ),
        ),
      route: () => link.route,
      fallBack: () => link.fallBackToRelay(),
      close: () => link.close(),
    }
  }
}

/** A stream whose failure is reported as the connection's key mismatch, if that is what it was. */
async function* explained<T>(connection: PeerConnection, stream: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* stream
  } catch (err) {
    throw connection.explain(err)
  }
}
