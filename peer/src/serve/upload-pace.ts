import { Code, ConnectError } from '@connectrpc/connect'
import type { UploadRequest } from '../gen/peerdir/v1/peer_pb.ts'

/**
 * What an upload must bring within each stall time to be kept: the downloader's rule for a source
 * (transfer/chunk-reader.ts), 256 KiB in 20 s. An upload claims its declared size of the inbox's quota
 * from its header on, so one that trickles a byte now and then would hold that claim, and a slot, for
 * as long as it pleases.
 */
export const UPLOAD_PROGRESS_BYTES = 256 * 1024
export const UPLOAD_STALL_MS = 20_000

/**
 * The upload's messages, cut with DeadlineExceeded once `stallMs` pass in which less than
 * UPLOAD_PROGRESS_BYTES of data arrived (the header counts as a start, not as progress). The caller's
 * `finally` gives back what it claimed; `stop()` ends the watch once the upload is whole.
 */
export function pacedUpload(requests: AsyncIterable<UploadRequest>, stallMs = UPLOAD_STALL_MS) {
  const iterator = requests[Symbol.asyncIterator]()
  let sinceRefresh = 0
  let stalled: ConnectError | undefined
  // The pending read's reject, if one is pending. Not a race against one long-lived promise: each
  // race would leave a reaction on it, and an upload has many thousands of messages.
  let cutPending: ((err: ConnectError) => void) | undefined
  const timer = setTimeout(() => {
    stalled = new ConnectError(
      `the upload brought less than ${UPLOAD_PROGRESS_BYTES / 1024} KiB in ${stallMs / 1000} s; it was cut and its room in the inbox given back`,
      Code.DeadlineExceeded,
    )
    cutPending?.(stalled)
  }, stallMs)
  const read = () =>
    new Promise<IteratorResult<UploadRequest>>((resolve, reject) => {
      cutPending = reject
      iterator.next().then(resolve, reject)
    }).finally(() => {
      cutPending = undefined
    })
  return {
    async next(): Promise<IteratorResult<UploadRequest>> {
      if (stalled) throw stalled
      const next = await read()
      if (!next.done && next.value.part.case === 'data') {
        sinceRefresh += next.value.part.value.length
        if (sinceRefresh >= UPLOAD_PROGRESS_BYTES) {
          sinceRefresh = 0
          timer.refresh()
        }
      }
      return next
    },
    stop() {
      clearTimeout(timer)
    },
  }
}
