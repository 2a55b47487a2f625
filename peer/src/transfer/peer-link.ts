import { type CallCredentials, streamWithCallToken, withCallToken } from '../wire/call-token.ts'
import { DownloadClient } from '../wire/download-client.ts'
import { peerClient } from '../wire/transport.ts'
import type { Connect } from './source-pool.ts'

export type { CallCredentials }

/**
 * Sources reached directly over gRPC: the manifest through Connect's client, the bytes through the
 * Download client that copies them once. Each call presents the source's own call token; one the source
 * refuses is replaced once (it expired or its session was renewed) before the call counts as failed.
 */
export function peerLinks(options: { credentials: CallCredentials; timeoutMs: number }): Connect {
  const { credentials } = options
  return (source) => {
    const client = peerClient(source.url)
    const link = new DownloadClient(source.url)
    return {
      manifest: async (sha256, signal) => {
        const m = await withCallToken(
          credentials,
          source.username,
          (headers) => client.getManifest({ sha256 }, { headers, timeoutMs: options.timeoutMs, signal }),
          { signal },
        )
        return {
          size: Number(m.size),
          chunkSize: m.chunkSize,
          chunkHashes: m.chunkHashes.map((h) => Buffer.from(h)),
        }
      },
      download: (call, signal) =>
        streamWithCallToken(
          credentials,
          source.username,
          (headers) => link.download(call, headers, signal),
          signal,
        ),
      close: () => link.close(),
    }
  }
}
