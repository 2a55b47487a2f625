import type { Context } from 'hono'
import { sessionRevoked } from '../middleware/require-auth.ts'
import { StorageError } from '../store/storage-errors.ts'
import type { Presence, PresenceSession } from './presence.ts'

/** The part of a Durable Object namespace binding used here (its types live in @cloudflare/workers-types). */
export type ShardNamespace = {
  idFromName(name: string): unknown
  get(id: unknown): { fetch(request: Request): Promise<Response> }
}

/**
 * How many Durable Objects hold the leases. A peer's shard is a hash of its username, fixed: changing
 * this moves peers to shards that never saw their leases. 256 keeps a million peers heartbeating every
 * 20 s (50,000 calls a second) near 200 calls a second per object, well under the ~1,000 one object
 * serves, while a small network's shards still see a call every few seconds each (README, "Presence").
 */
export const PRESENCE_SHARDS = 256

/** FNV-1a of the username's UTF-16 code units, modulo the shard count. */
export function shardOf(username: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < username.length; i++) {
    hash ^= username.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) % PRESENCE_SHARDS
}

/**
 * The Workers lease keeper: each call goes to the peer's shard (entries/presence-shard.ts), which keeps
 * the lease in memory, writes storage at transitions only, and holds the presence socket hibernating.
 */
export class ShardedLeases implements Presence {
  readonly #namespace: ShardNamespace

  constructor(namespace: ShardNamespace) {
    this.#namespace = namespace
  }

  #shard(username: string) {
    return this.#namespace.get(this.#namespace.idFromName(`presence-${shardOf(username)}`))
  }

  async #call(username: string, operation: string, body: unknown): Promise<Response> {
    let response: Response
    try {
      response = await this.#shard(username).fetch(
        new Request(`https://presence-shard/${operation}`, { method: 'POST', body: JSON.stringify(body) }),
      )
    } catch (err) {
      throw new StorageError(err)
    }
    if (!response.ok) throw new StorageError(`presence shard: ${response.status} ${await response.text()}`)
    return response
  }

  async up(session: PresenceSession, url: string, network: string | undefined) {
    await this.#call(session.username, 'up', { ...session, url, network })
  }

  async renew(sessionId: string, username: string): Promise<boolean> {
    const answer = (await (await this.#call(username, 'renew', { sessionId })).json()) as { renewed: boolean }
    return answer.renewed
  }

  async down(session: PresenceSession) {
    await this.#call(session.username, 'down', session)
  }

  /** Storage's lastSeen stands (coarse, an hour at most behind): asking every shard per listing costs more. */
  lastSeen(): undefined {
    return undefined
  }

  async removed(peerId: number, username: string) {
    await this.#call(username, 'removed', { peerId })
  }

  async socket(c: Context, session: PresenceSession): Promise<Response> {
    const offered = c.req.header('sec-websocket-protocol') ?? ''
    const protocol = /(?:^|,)\s*peerdir\.v1\s*(?:,|$)/.test(offered) ? 'peerdir.v1' : ''
    let response: Response
    try {
      response = await this.#shard(session.username).fetch(
        new Request('https://presence-shard/socket', {
          headers: { upgrade: 'websocket', 'x-presence': JSON.stringify(session), 'x-protocol': protocol },
        }),
      )
    } catch (err) {
      throw new StorageError(err)
    }
    if (response.status === 401) throw sessionRevoked()
    if (response.status !== 101) throw new StorageError(`presence shard: ${response.status}`)
    return response
  }
}
