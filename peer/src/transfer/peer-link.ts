import { DownloadClient } from '../wire/download-client.ts'
import { peerClient } from '../wire/transport.ts'
import type { Connect } from './source-pool.ts'

/**
 * Sources reached directly over gRPC: the manifest through Connect's client, the bytes through the
 * Download client that copies them once. `token` is the credential each call presents.
 */
export function peerLinks(options: { token: () => string | undefined; timeoutMs: number }): Connect {
  const headers = () => {
    const token = options.token()
    return token ? { authorization: `Bearer ${token}` } : undefined
  }
  return (source) => {
    const client = peerClient(source.url)
    const link = new DownloadClient(source.url)
    return {
      manifest: async (sha256, signal) => {
        const m = await client.getManifest(
          { sha256 },
          { headers: headers(), timeoutMs: options.timeoutMs, signal },
        )
        return {
          size: Number(m.size),
          chunkSize: m.chunkSize,
          chunkHashes: m.chunkHashes.map((h) => Buffer.from(h)),
        }
      },
      download: (call, signal) => link.download(call, headers(), signal),
      close: () => link.close(),
    }
  }
}
