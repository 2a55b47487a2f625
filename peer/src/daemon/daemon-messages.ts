import type { MessageInitShape } from '@bufbuild/protobuf'
import type { EventsResponseSchema, WishSchema } from '../gen/peerdir/v1/control_pb.ts'
import type { DaemonEvent, Missed } from './daemon-events.ts'
import type { Wish } from './wish-store.ts'

/** A daemon event as the Events RPC sends it: its type and time, and the part for its type. */
export function eventMessage(event: DaemonEvent | Missed): MessageInitShape<typeof EventsResponseSchema> {
  const head = { type: event.type, time: event.time }
  switch (event.type) {
    case 'download-started':
    case 'download-progress':
    case 'download-queued':
    case 'download-completed':
    case 'download-failed': {
      const { type: _type, time: _time, size, ...rest } = event
      const doneBytes = 'doneBytes' in event ? BigInt(event.doneBytes) : 0n
      return { ...head, event: { case: 'download', value: { ...rest, size: BigInt(size), doneBytes } } }
    }
    case 'wish-matched':
      return {
        ...head,
        event: { case: 'wishMatched', value: { ...event, size: BigInt(event.size) } },
      }
    case 'upload-served':
      return {
        ...head,
        event: { case: 'uploadServed', value: { ...event, bytes: BigInt(event.bytes) } },
      }
    case 'session':
      return { ...head, event: { case: 'session', value: event } }
    case 'missed':
      return { ...head, event: { case: 'missed', value: { count: BigInt(event.count) } } }
  }
}

export function wishMessage(wish: Wish): MessageInitShape<typeof WishSchema> {
  return {
    id: wish.id,
    query: wish.query,
    get: wish.get,
    minSize: BigInt(wish.minSize ?? 0),
    maxSize: BigInt(wish.maxSize ?? 0),
    createdAt: wish.createdAt,
    lastRunAt: wish.lastRunAt ?? '',
    lastError: wish.lastError ?? '',
    matches: wish.matches.map((m) => ({
      name: m.name,
      path: m.path,
      sha256: m.sha256,
      size: BigInt(m.size),
      foundAt: m.foundAt,
      fetch: m.fetch ?? '',
      error: m.error ?? '',
    })),
  }
}
