import { randomBytes } from 'node:crypto'
import { mkdir, open, rm, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { create } from '@bufbuild/protobuf'
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from '@connectrpc/connect'
import { moveToFreeName } from '../content/free-name.ts'
import { ManifestBuilder } from '../content/manifest.ts'
import type { SharedFile } from '../content/share-index.ts'
import { isShareableName } from '../content/share-index.ts'
import {
  DownloadResponseSchema,
  GetInfoResponseSchema,
  GetManifestResponseSchema,
  PeerService,
  type UploadRequest,
  UploadResponseSchema,
} from '../gen/peerdir/v1/peer_pb.ts'
import { VERSION } from '../version.ts'
import { callerAddressKey, callerKey } from '../wire/auth.ts'
import { InboxQuota } from './inbox-quota.ts'
import {
  checkDownload,
  isSha256,
  type RangeServing,
  servedRange,
  sharedOrRefuse,
  slotAccount,
  slotFor,
  unchanged,
} from './served-range.ts'
import { pacedUpload } from './upload-pace.ts'

export type PeerServiceOptions = RangeServing & {
  acceptUploads: boolean
  inboxDir: string
  maxUploadBytes: number
  /** The inbox holds at most this many bytes, uploads in flight included. */
  inboxQuotaBytes: number
  /** An upload bringing less than 256 KiB in this long is cut (default UPLOAD_STALL_MS). */
  uploadStallMs?: number
  onUploaded: (file: SharedFile) => void
}

export function peerServiceRoutes(options: PeerServiceOptions) {
  const { index } = options
  const quota = new InboxQuota(index, options.inboxDir, options.inboxQuotaBytes)
  /** The sha256s of uploads being received now. */
  const receiving = new Set<string>()

  async function* download(
    req: { sha256: string; offset: bigint; length: bigint; readerWaiting: boolean },
    ctx: HandlerContext,
  ) {
    const range = await checkDownload(options, req)
    const caller = ctx.values.get(callerKey)
    const slot = await slotFor(options, slotAccount(caller, ctx.values.get(callerAddressKey)), ctx.signal)
    const turn = { caller, readerWaiting: req.readerWaiting }
    for await (const { offset, data } of servedRange(options, turn, range, ctx.signal, undefined, slot)) {
      yield create(DownloadResponseSchema, { offset: BigInt(offset), data })
    }
  }

  async function upload(requests: AsyncIterable<UploadRequest>) {
    if (!options.acceptUploads) {
      throw new ConnectError(
        'this peer does not accept uploads (start it with --accept-uploads)',
        Code.PermissionDenied,
      )
    }
    const messages = pacedUpload(requests, options.uploadStallMs)
    try {
      return await admit(messages)
    } finally {
      messages.stop()
    }
  }

  /** Checks an upload's header against the inbox, then receives it under a claim of its size. */
  async function admit(iterator: AsyncIterator<UploadRequest>) {
    const first = await iterator.next()
    if (first.done || first.value.part.case !== 'header') {
      throw new ConnectError('an upload starts with a header {name, size, sha256}', Code.InvalidArgument)
    }
    const header = first.value.part.value
    if (!isShareableName(header.name) || header.name.startsWith('.')) {
      throw new ConnectError('the name must be a plain file name (no path, not hidden)', Code.InvalidArgument)
    }
    if (!isSha256(header.sha256))
      throw new ConnectError('sha256 must be 64 lower-case hex characters', Code.InvalidArgument)
    if (header.size > BigInt(options.maxUploadBytes)) {
      throw new ConnectError(
        `uploads are limited to ${options.maxUploadBytes} bytes here`,
        Code.ResourceExhausted,
      )
    }
    const expected = Number(header.size)
    // Bytes already here are not taken again: the caller hears the name they have, nothing is written,
    // and the rest of its stream is left unread.
    const known = await stillShared(header.sha256)
    if (known && known.size === expected)
      return create(UploadResponseSchema, { name: known.name, size: header.size, sha256: known.sha256 })
    // One copy of a content in flight at a time: twins would each pass the check above and the quota.
    if (receiving.has(header.sha256)) {
      throw new ConnectError(
        'these bytes are being received from another upload right now; send again once it has finished',
        Code.AlreadyExists,
      )
    }
    // Claimed first: a refusal leaves nothing to undo, so the next push of these bytes is not turned away.
    const release = quota.claim(expected)
    receiving.add(header.sha256)
    try {
      return await receive(iterator, header, release)
    } finally {
      release()
      receiving.delete(header.sha256)
    }
  }

  /** The shared file with these bytes, if its file is still as it was hashed (else it is rescanned). */
  async function stillShared(sha256: string): Promise<SharedFile | undefined> {
    const file = index.get(sha256)
    if (!file) return undefined
    if (await index.unchanged(file)) return file
    options.onStale()
    return undefined
  }

  async function receive(
    iterator: AsyncIterator<UploadRequest>,
    header: { name: string; size: bigint; sha256: string },
    release: () => void,
  ) {
    const expected = Number(header.size)
    await mkdir(options.inboxDir, { recursive: true })
    const temp = join(options.inboxDir, `.upload-${randomBytes(8).toString('hex')}.part`)
    const handle = await open(temp, 'wx', 0o644)
    const manifest = new ManifestBuilder()
    let kept = false
    try {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        if (next.value.part.case !== 'data') {
          throw new ConnectError('only data may follow the header', Code.InvalidArgument)
        }
        const data = next.value.part.value
        if (manifest.size + data.length > expected) {
          throw new ConnectError(`more bytes than the header's size (${expected})`, Code.InvalidArgument)
        }
        manifest.update(data)
        await handle.write(data)
      }
      if (manifest.size !== expected) {
        throw new ConnectError(`received ${manifest.size} bytes; the header said ${expected}`, Code.DataLoss)
      }
      const received = manifest.finish()
      const actual = received.sha256
      if (actual !== header.sha256) {
        throw new ConnectError(
          `the bytes hash to ${actual}, not the header's ${header.sha256}`,
          Code.DataLoss,
        )
      }
      await handle.close()
      // The same bytes again: already shared, so not kept twice; the answer names the copy there is.
      const held = await stillShared(actual)
      if (held)
        return create(UploadResponseSchema, { name: held.name, size: BigInt(held.size), sha256: actual })
      const destination = await moveToFreeName(temp, options.inboxDir, header.name)
      kept = true
      const info = await stat(destination)
      const name = basename(destination)
      options.onUploaded({ ...received, name, path: destination, mtimeMs: info.mtimeMs })
      release() // counted in the index from here on
      return create(UploadResponseSchema, { name, size: BigInt(received.size), sha256: actual })
    } finally {
      if (!kept) {
        await handle.close().catch(() => {})
        await rm(temp, { force: true })
      }
    }
  }

  return (router: ConnectRouter) =>
    router.service(PeerService, {
      getInfo: () =>
        create(GetInfoResponseSchema, {
          username: options.username(),
          version: VERSION,
          files: index.files.length,
        }),
      getManifest: async (req) => {
        const file = sharedOrRefuse(index, req.sha256)
        await unchanged(options, file)
        return create(GetManifestResponseSchema, {
          name: file.name,
          size: BigInt(file.size),
          sha256: file.sha256,
          chunkSize: file.chunkSize,
          chunkHashes: file.chunkHashes,
        })
      },
      download,
      upload,
    })
}
