/** The keep-alive the directory answers `pong` (on Workers the runtime does, without waking the shard). */
const PING = 'ping'
const PONG = 'pong'
/** How long opening the socket may take before the peer is left to heartbeats. */
const OPEN_TIMEOUT_MS = 10_000

/** The directory's close code for a session that ended (logout, removed account): log in again. */
export const SESSION_ENDED = 4001

export type PresenceEnd = { code: number; reason: string }

/**
 * `GET /v1/presence` held for a session: the peer is up while it is open, and down at once when this
 * process goes away (its TCP connection closes with it). Node's own WebSocket client; the token goes as
 * the `bearer.<token>` subprotocol. Pings every third of the lease; no answer by the next ping (or a
 * socket no longer open) ends it, and `onEnd` is called once, whatever ended it.
 */
export class PresenceSocket {
  readonly #socket: WebSocket
  readonly #ticker: ReturnType<typeof setInterval>
  #ended = false

  private constructor(socket: WebSocket, leaseSeconds: number, onEnd: (end: PresenceEnd) => void) {
    this.#socket = socket
    let answered = true
    const end = (code: number, reason: string) => {
      if (this.#ended) return
      this.#ended = true
      clearInterval(this.#ticker)
      onEnd({ code, reason })
    }
    socket.addEventListener('message', (event) => {
      if (event.data === PONG) answered = true
    })
    socket.addEventListener('close', (event) => end(event.code, event.reason))
    this.#ticker = setInterval(
      () => {
        // A close frame leaves the socket CLOSING until the server ends the connection: over already.
        if (socket.readyState !== WebSocket.OPEN) return end(1006, 'socket no longer open')
        if (!answered) {
          this.close()
          return end(1006, 'no pong for a third of a lease')
        }
        answered = false
        socket.send(PING)
      },
      Math.max(1000, (leaseSeconds * 1000) / 3),
    )
    this.#ticker.unref?.()
  }

  /** Opens the socket; rejects when the directory refuses it (501 where it has none, 401, 426) or cannot be reached. */
  static open(
    directoryUrl: string,
    token: string,
    leaseSeconds: number,
    onEnd: (end: PresenceEnd) => void,
  ): Promise<PresenceSocket> {
    const url = `${directoryUrl.replace(/^http/, 'ws').replace(/\/$/, '')}/v1/presence`
    return new Promise((resolve, reject) => {
      let socket: WebSocket
      try {
        socket = new WebSocket(url, ['peerdir.v1', `bearer.${token}`])
      } catch (err) {
        reject(err)
        return
      }
      // A directory (or a proxy before it) that takes the connection and never answers the upgrade
      // must not hold the session: heartbeats wait on this.
      const timer = setTimeout(() => {
        refused()
        socket.close()
      }, OPEN_TIMEOUT_MS)
      const refused = () => {
        clearTimeout(timer)
        reject(new Error('the directory did not open a presence socket'))
      }
      socket.addEventListener('error', refused)
      socket.addEventListener('close', refused)
      socket.addEventListener('open', () => {
        clearTimeout(timer)
        socket.removeEventListener('error', refused)
        socket.removeEventListener('close', refused)
        resolve(new PresenceSocket(socket, leaseSeconds, onEnd))
      })
    })
  }

  /** Lets go of the socket (the directory then takes the peer down, unless a logout did already). */
  close() {
    try {
      this.#socket.close(1000, 'bye')
    } catch {
      // Closing already.
    }
  }
}
