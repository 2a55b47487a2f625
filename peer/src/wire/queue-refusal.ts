import { Code, ConnectError } from '@connectrpc/connect'

/**
 * How a peer tells a Download caller it waits for an upload slot (README, "Upload slots"; peer.proto):
 * status RESOURCE_EXHAUSTED with two trailers (response metadata in the Connect protocol), its place in
 * the queue (1 is next) and when to ask again, and a message that says both in words.
 */
export const QUEUE_PLACE_HEADER = 'peerdir-queue-place'
export const RETRY_AFTER_HEADER = 'peerdir-retry-after-ms'

export type QueuePlace = { place: number; retryAfterMs: number }

export function queueRefusal(username: string, queued: QueuePlace & { waiting: number }): ConnectError {
  const seconds = Math.max(1, Math.ceil(queued.retryAfterMs / 1000))
  return new ConnectError(
    `every upload slot of ${username} is taken: you are number ${queued.place} of ${queued.waiting} in its queue; ask again in ${seconds} s (sooner loses your place)`,
    Code.ResourceExhausted,
    new Headers({
      [QUEUE_PLACE_HEADER]: String(queued.place),
      [RETRY_AFTER_HEADER]: String(Math.round(queued.retryAfterMs)),
    }),
  )
}

/** The place and wait a refusal names; undefined for any other error (a full queue is a failure). */
export function queuePlaceOf(err: unknown): QueuePlace | undefined {
  if (!(err instanceof ConnectError) || err.code !== Code.ResourceExhausted) return undefined
  const place = Number(err.metadata.get(QUEUE_PLACE_HEADER))
  const retryAfterMs = Number(err.metadata.get(RETRY_AFTER_HEADER))
  if (!Number.isSafeInteger(place) || place < 1 || !Number.isFinite(retryAfterMs)) return undefined
  // A peer's word on when to come back is bounded: not a busy loop, not a day.
  return { place, retryAfterMs: Math.min(60_000, Math.max(250, retryAfterMs)) }
}
