import { join } from 'node:path'
import type { ShareIndex } from '../../peer/src/content/share-index.ts'
import type { PeerServiceOptions } from '../../peer/src/serve/peer-service.ts'

/**
 * PeerService options for a share that serves `index` as `username` and takes no uploads: what the
 * in-process server tests start their port with (`dir` holds the never-used inbox).
 */
export const servingOptions = (index: ShareIndex, dir: string, username: string): PeerServiceOptions => ({
  index,
  username: () => username,
  acceptUploads: false,
  inboxDir: join(dir, 'inbox'),
  maxUploadBytes: 0,
  inboxQuotaBytes: 0,
  onStale: () => {},
  onUploaded: () => {},
})
