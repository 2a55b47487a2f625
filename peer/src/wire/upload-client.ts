import { createReadStream } from 'node:fs'
import { create } from '@bufbuild/protobuf'
import { UploadHeaderSchema, UploadRequestSchema, type UploadResponse } from '../gen/peerdir/v1/peer_pb.ts'
import type { AuthHeaders } from './call-token.ts'
import { type PeerTarget, peerClient } from './peer-client.ts'

/** What an upload announces: the file's name for the receiver, its size and its content's hash. */
export type UploadHeader = { name: string; size: number; sha256: string }

/**
 * The sending side of PeerService.Upload (`peer push`): the header, then the file's bytes read from
 * `path` as they are sent, in messages of 512 KiB.
 */
export function uploadFile(
  target: PeerTarget,
  path: string,
  header: UploadHeader,
  headers: AuthHeaders,
): Promise<UploadResponse> {
  async function* parts() {
    yield create(UploadRequestSchema, {
      part: {
        case: 'header',
        value: create(UploadHeaderSchema, { ...header, size: BigInt(header.size) }),
      },
    })
    for await (const data of createReadStream(path, { highWaterMark: 512 * 1024 })) {
      yield create(UploadRequestSchema, { part: { case: 'data', value: data as Buffer } })
    }
  }
  return peerClient(target).upload(parts(), { headers })
}
