import { open } from 'node:fs/promises'
import { Code, ConnectError } from '@connectrpc/connect'
import type { SharedFile, ShareIndex } from '../content/share-index.ts'
import { queueRefusal } from '../wire/queue-refusal.ts'
import type { RateLimiter, Turn } from './rate-limit.ts'
import type { SlotTicket, UploadSlots } from './upload-slots.ts'

/*
 * A Download call's range, whichever server answers it (Connect's handler or the fast path): checked
 * against the share index and the disk, admitted to an upload slot, read at the upload rate.
 */

/** Download messages carry at most this much; big enough to amortise framing, small enough to interleave. */
export const MESSAGE_BYTES = 512 * 1024

/** What serving a range needs of the peer's service: its index, its limits and who to tell. */
export type RangeServing = {
  index: ShareIndex
  username: () => string
  limiter?: RateLimiter
  /** Who is served Download calls now, and who waits (`--upload-slots`); unset: everyone at once. */
  slots?: UploadSlots
  /** The share index saw a file change under it: rescan. */
  onStale: () => void
  /** After each Download call: who (empty with --open and no token) was sent how many bytes of which file. */
  onServed?: (served: { username: string; file: SharedFile; bytes: number }) => void
}

export const isSha256 = (value: string) => /^[0-9a-f]{64}$/.test(value)

export function sharedOrRefuse(index: ShareIndex, sha256: string): SharedFile {
  if (!isSha256(sha256))
    throw new ConnectError('sha256 must be 64 lower-case hex characters', Code.InvalidArgument)
  const file = index.get(sha256)
  if (!file) throw new ConnectError(`this peer does not share ${sha256}`, Code.NotFound)
  return file
}

/** Refuses to serve a file that changed on disk since it was hashed: its bytes no longer match. */
export async function unchanged(options: RangeServing, file: SharedFile) {
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
  options: RangeServing,
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
  options: RangeServing,
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
  options: RangeServing,
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
  options: RangeServing,
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
