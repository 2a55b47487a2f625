import { type PresenceEnd, PresenceSocket } from './presence-socket.ts'

/** How long a directory that refused the presence socket (none there, or a proxy that cuts WebSockets) is left to heartbeats. */
export const PRESENCE_RETRY_MS = 5 * 60_000

type Options = {
  directoryUrl: string
  log: (line: string) => void
  /** A socket that held the peer up has ended: heartbeats must take over at once. */
  onEnded: () => void
}

/**
 * The presence socket of a DirectorySession's session, where the directory offers one: tried after a
 * heartbeat, again at once after a drop, and PRESENCE_RETRY_MS after a refusal (logged once, not at
 * every try).
 */
export class PresenceHolder {
  readonly #options: Options
  #socket: PresenceSocket | undefined
  #retryAt = 0
  #refused = false

  constructor(options: Options) {
    this.#options = options
  }

  /** Whether a socket holds the peer up now. */
  get held(): boolean {
    return this.#socket !== undefined
  }

  /** None is held, and it is time to try (again). */
  get due(): boolean {
    return !this.#socket && Date.now() >= this.#retryAt
  }

  /**
   * Opens the socket for `token`; `held` says whether it holds the peer now. `stillWanted` is asked once
   * it is open: the session may have been logged out or taken down while it opened, and then it is closed.
   */
  async hold(token: string, leaseSeconds: number, stillWanted: () => boolean): Promise<void> {
    const { directoryUrl, log } = this.#options
    let socket: PresenceSocket | undefined
    const ended = (end: PresenceEnd) => {
      if (this.#socket !== socket) return
      this.#socket = undefined
      this.#retryAt = 0
      log(`presence socket closed (${end.code}${end.reason ? ` ${end.reason}` : ''}); heartbeating`)
      this.#options.onEnded()
    }
    try {
      socket = await PresenceSocket.open(directoryUrl, token, leaseSeconds, ended)
    } catch {
      this.#retryAt = Date.now() + PRESENCE_RETRY_MS
      if (!this.#refused) log('the directory holds no presence socket here; heartbeating')
      this.#refused = true
      return
    }
    if (!stillWanted()) {
      socket.close()
      return
    }
    this.#socket = socket
    this.#refused = false
    log('holding the presence socket')
  }

  drop() {
    const socket = this.#socket
    this.#socket = undefined
    socket?.close()
  }
}
