import { createHash, randomBytes } from 'node:crypto'

/** How long a one-time URL of the web app stays good, unused. */
export const TICKET_SECONDS = 60
/** Tickets and sessions kept at most: a caller minting many pushes the oldest out, memory stays bounded. */
const MAX_KEPT = 64

const digest = (secret: string) => createHash('sha256').update(secret).digest('hex')

/**
 * Who may use the daemon's web app (`peer ui`): the owner asks the control socket for a ticket, a
 * random one-time secret good for 60 s; the browser that spends it gets a session secret in an HttpOnly
 * cookie. Only digests are kept, and both sets are bounded. Sessions live as long as the daemon.
 */
export class AppSessions {
  readonly #tickets = new Map<string, number>()
  readonly #sessions = new Set<string>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** A new ticket, to put in the one-time URL. */
  ticket(): string {
    const secret = randomBytes(32).toString('base64url')
    this.#tickets.set(digest(secret), this.#now() + TICKET_SECONDS * 1000)
    trim(this.#tickets)
    return secret
  }

  /** Spends `ticket` (once, within its time): a session secret for the cookie, or undefined. */
  spend(ticket: string | null): string | undefined {
    if (!ticket) return undefined
    const key = digest(ticket)
    const until = this.#tickets.get(key)
    this.#tickets.delete(key)
    if (until === undefined || this.#now() > until) return undefined
    const session = randomBytes(32).toString('base64url')
    this.#sessions.add(digest(session))
    trim(this.#sessions)
    return session
  }

  holds(session: string | undefined): boolean {
    return session !== undefined && session.length > 0 && this.#sessions.has(digest(session))
  }
}

function trim(kept: Map<string, unknown> | Set<string>) {
  for (const key of kept.keys()) {
    if (kept.size <= MAX_KEPT) return
    kept.delete(key)
  }
}
