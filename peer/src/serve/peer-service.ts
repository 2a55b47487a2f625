import { randomBytes } from 'node:crypto'
import { mkdir, open, rm, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { create } from '@bufbuild/protobuf'
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from '@connectrpc/connect'
import { moveToFreeName } from '../content/free-name.ts'
import { ManifestBuilder } from '../content/manifest.ts'
import type { SharedFile, ShareIndex } from '../content/share-index.ts'
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
import { queueRefusal } from '../wire/queue-refusal.ts'
import { InboxQuota } from './inbox-quota.ts'
import type { RateLimiter, Turn } from './rate-limit.ts'
import { pacedUpload } from './upload-pace.ts'
import type { SlotTicket, UploadSlots } from './upload-slots.ts'

/** Download messages carry at most this much; big enough to amortise framing, small enough to interleave. */
export const MESSAGE_BYTES = 512 * 1024

export type PeerServiceOptions = {
  index: ShareIndex
  username: () => string
  acceptUploads: boolean
  inboxDir: string
  maxUploadBytes: number
  /** The inbox holds at most this many bytes, uploads in flight included. */
  inboxQuotaBytes: number
  limiter?: RateLimiter
  /** Who is served Download calls now, and who waits (`--upload-slots`); unset: everyone at once. */
  slots?: UploadSlots
  /** An upload bringing less than 256 KiB in this long is cut (default UPLOAD_STALL_MS). */
  uploadStallMs?: number
  /** The share index saw a file change under it: rescan. */
  onStale: () => void
  onUploaded: (file: SharedFile) => void
  /** After each Download call: who (empty with --open and no token) was sent how many bytes of which file. */
  onServed?: (served: { username: string; file: SharedFile; bytes: number }) => void
}

const isSha256 = (value: string) => /^[0-9a-f]{64}$/.test(value)

function sharedOrRefuse(index: ShareIndex, sha256: string): SharedFile {
  if (!isSha256(sha256))
    throw new ConnectError('sha256 must be 64 lower-case hex characters', Code.InvalidArgument)
  const file = index.get(sha256)
  if (!file) throw new ConnectError(`this peer does not share ${sha256}`, Code.NotFound)
  return file
}

/** Refuses to serve a file that changed on disk since it was hashed: its bytes no longer match. */
async function unchanged(options: PeerServiceOptions, file: SharedFile) {
  if (await options.index.unchanged(file)) return
  options.onStale()
  throw new ConnectError(
    `${file.name} changed or vanished on this peer; ask another source`,
    Code.FailedPrecondition,
  )
}

export type DownloadRange = { file: SharedFile; start: number; end: number }

/** Checks a Download request against the index and the disk; throws the error its caller should see. */
export async function checkDownload(
  options: PeerServiceOptions,
  req: { sha256: string; offset: bigint; length: bigint },
): Promise<DownloadRange> {
  const file = sharedOrRefuse(options.index, req.sha256)
  const size = BigInt(file.size)
  if (req.offset > size) {
    throw new ConnectError(
      `offset ${req.offset} is past the end of the file (${size} bytes)`,
      Code.OutOfRange,
    )
  }
  const end = req.length === 0n ? size : req.offset + req.length
  if (end > size) {
    throw new ConnectError(
      `offset + length (${end}) is past the end of the file (${size} bytes)`,
      Code.OutOfRange,
    )
  }
  await unchanged(options, file)
  return { file, start: Number(req.offset), end: Number(end) }
}

/** The account a Download call counts against for its slot: the caller's username, else its address. */
export const slotAccount = (caller: string, address: string) => caller || address || 'anonymous'

/**
 * A slot for `account`'s Download call, or the refusal it is given: queued (with its place and when to
 * ask again, held back a while for a caller that asked too early), or the queue is full. Only Download
 * calls wait: a manifest is a few KiB, and a downloader needs it to fetch from anyone at all.
 */
export async function slotFor(
  options: PeerServiceOptions,
  account: string,
  signal: AbortSignal,
): Promise<SlotTicket | undefined> {
  const admission = options.slots?.admit(account)
  if (!admission) return undefined
  if ('ticket' in admission) return admission.ticket
  if ('full' in admission) {
    throw new ConnectError(
      `every upload slot of ${options.username()} is taken and its queue is full (${admission.full.maxQueue} waiting); try again later or another source`,
      Code.ResourceExhausted,
    )
  }
  const { delayMs } = admission.queued
  if (delayMs > 0) await abortableDelay(delayMs, signal)
  throw queueRefusal(options.username(), admission.queued)
}

const abortableDelay = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })

/**
 * A capped upload sends pieces of at most its burst (16 KiB at least): the calls it serves take turns,
 * and one turn of 512 KiB at a low rate would leave the others silent long enough to be given up.
 */
const messageBytes = (limiter: RateLimiter | undefined) =>
  limiter ? Math.min(MESSAGE_BYTES, Math.max(16 * 1024, Math.floor(limiter.burstBytes))) : MESSAGE_BYTES

/**
 * Reads a checked range in pieces of at most MESSAGE_BYTES, each only once the upload rate allows it.
 * `bufferFor` hands out the memory to read into (a fresh buffer unless the caller recycles its own);
 * `turn` says whose call it is and whether a reader waits on it (the limiter's order within a caller,
 * with the file and offset of each piece).
 */
export async function* readRange(
  options: PeerServiceOptions,
  { file, start, end }: DownloadRange,
  signal: AbortSignal,
  bufferFor: (length: number) => Buffer | Promise<Buffer> = Buffer.allocUnsafe,
  turn?: Turn,
): AsyncGenerator<{ offset: number; data: Buffer }> {
  const handle = await open(file.path, 'r')
  const pieceBytes = messageBytes(options.limiter)
  try {
    for (let position = start; position < end; ) {
      if (signal.aborted) return
      const length = Math.min(pieceBytes, end - position)
      await options.limiter?.take(length, signal, turn && { ...turn, file: file.path, offset: position })
      const buffer = await bufferFor(length)
      const { bytesRead } = await handle.read(buffer, 0, length, position)
      if (bytesRead !== length) {
        options.onStale()
        throw new ConnectError(`${file.name} shrank while being served`, Code.FailedPrecondition)
      }
      yield { offset: position, data: buffer.subarray(0, length) }
      position += length
    }
  } finally {
    await handle.close()
  }
}

/**
 * readRange for `username`, telling `onServed` how many bytes went out once the call ends, however it
 * ends, and its slot as they go; the slot is released with the call.
 */
export async function* servedRange(
  options: PeerServiceOptions,
  turn: Turn,
  range: DownloadRange,
  signal: AbortSignal,
  bufferFor?: (length: number) => Buffer | Promise<Buffer>,
  slot?: SlotTicket,
): AsyncGenerator<{ offset: number; data: Buffer }> {
  let bytes = 0
  try {
    for await (const piece of readRange(options, range, signal, bufferFor, turn)) {
      bytes += piece.data.length
      slot?.sent(piece.data.length)
      yield piece
    }
  } finally {
    slot?.release()
    if (bytes > 0) options.onServed?.({ username: turn.caller, file: range.file, bytes })
  }
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
