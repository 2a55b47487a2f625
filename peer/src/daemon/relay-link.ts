import type net from 'node:net'
import { decodeJwt } from 'jose'
import { answerStatus, readAnswerHead } from '../wire/http1-answer.ts'
import { dialRelayBound } from '../wire/relay-dial.ts'
import { REGISTER_PATH, UPGRADE_PROTOCOL } from '../wire/relay-protocol.ts'
import { Alarm } from './alarm.ts'

type Options = {
  relayUrl: string
  username: string
  /**
   * A fresh relay token for this relay (POST /v1/relay-tokens), or undefined while not logged in. The
   * daemon logs in for it: a relayed peer is listed (up) only while its link is (see `lost`).
   */
  token: () => Promise<string | undefined>
  /** The link is lost, or could not be made: the daemon goes down in the directory until the next try. */
  lost: (why: string) => Promise<void>
  /** Serves the calls the relay forwards over a registered connection. */
  serve: (socket: net.Socket) => void
  log: (line: string) => void
  /** The link to the relay was made (true) or lost (false). */
  onLink?: (linked: boolean) => void
}

const DIAL_TIMEOUT_MS = 10_000
const MAX_BACKOFF_MS = 30_000
/** A link that lasts this long was a success, whatever ends it. */
const STABLE_LINK_MS = 10_000

/**
 * Keeps this daemon registered with its relay (`peer start --relay URL`): dials out, registers with a
 * call token addressed to itself, and serves what the relay forwards over that connection. It registers
 * again well before the token expires (the relay swaps the connections without losing a call) and, when
 * the link drops or the relay refuses, after a backoff. Never throws out of its loop.
 */
export class RelayLink {
  readonly #options: Options
  #stopped = false
  #lastError = ''
  #current: net.Socket | undefined
  /** What onLink last said, so it hears each change once, whichever path made it. */
  #linked = false
  readonly #alarm = new Alarm()
  #loop: Promise<void> | undefined

  constructor(options: Options) {
    this.#options = options
  }

  get relayUrl(): string {
    return this.#options.relayUrl
  }

  /** Why the last registration failed; empty once registered. */
  get lastError(): string {
    return this.#lastError
  }

  get connected(): boolean {
    return this.#current !== undefined && !this.#current.destroyed
  }

  start() {
    this.#loop ??= this.#run()
  }

  /** Tries now instead of at the end of the backoff (after `peer login`). */
  retryNow() {
    this.#alarm.wake()
  }

  async stop() {
    this.#stopped = true
    this.#alarm.wake()
    this.#current?.destroy()
    await this.#loop?.catch(() => {})
  }

  async #run() {
    let failures = 0
    while (!this.#stopped) {
      try {
        failures = (await this.#registerAndHold()) ? 0 : failures + 1
      } catch (err) {
        // Never out of the loop: whatever failed is logged and tried again.
        this.#lastError = err instanceof Error ? err.message : String(err)
        failures++
      }
      if (failures > 0 && !this.#stopped) {
        // Not reachable through the relay, so not listed: a source nobody can reach only costs callers.
        if (!this.connected) {
          this.#setLinked(false)
          await this.#options.lost(`registered with the relay at ${this.#options.relayUrl}`)
        }
        const backoff =
          Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures, 6)) * (0.75 + Math.random() / 2)
        this.#options.log(
          `relay ${this.#options.relayUrl}: ${this.#lastError} (retrying in ${(backoff / 1000).toFixed(1)} s)`,
        )
        await this.#alarm.sleep(backoff)
      }
    }
  }

  /**
   * Registers and serves on the link until it is time to register again (true) or the link is lost;
   * a link lost soon after it was made counts as a failure (false), so two daemons that keep taking a
   * name from each other back off instead of spinning.
   */
  async #registerAndHold(): Promise<boolean> {
    const { log, relayUrl } = this.#options
    const token = await this.#options.token()
    if (!token) {
      this.#lastError = 'not logged in to the directory yet'
      return false
    }
    const socket = await register(new URL(relayUrl), token)
    if (this.#stopped) {
      socket.destroy()
      return true
    }
    if (!this.connected) log(`registered with relay ${relayUrl}`)
    this.#lastError = ''
    this.#current = socket
    this.#setLinked(true)
    const since = Date.now()
    socket.on('error', () => {}) // seen as its close below
    this.#options.serve(socket)
    // Again with a fresh token halfway through this one's life, well before the relay's session
    // check could find it expired; the relay swaps the links without losing a call.
    const { iat = 0, exp = 0 } = decodeJwt(token)
    const outcome = await this.#until(socket, Math.max(5_000, ((exp - iat) * 1000) / 2))
    if (outcome !== 'lost' || this.#stopped) return true
    this.#current = undefined
    log(`relay link to ${relayUrl} lost; registering again`)
    this.#setLinked(false)
    await this.#options.lost(`registered with the relay at ${relayUrl} again`)
    if (Date.now() - since >= STABLE_LINK_MS) return true
    this.#lastError = `the link was lost ${((Date.now() - since) / 1000).toFixed(1)} s after registering`
    return false
  }

  #setLinked(linked: boolean) {
    if (linked === this.#linked) return
    this.#linked = linked
    this.#options.onLink?.(linked)
  }

  /** Waits for the renewal time, the link's close or stop(), whichever comes first. */
  async #until(socket: net.Socket, ms: number): Promise<'renew' | 'lost' | 'stopped'> {
    if (socket.destroyed) return 'lost'
    let lost = false
    const onClose = () => {
      lost = true
      this.#alarm.wake()
    }
    socket.once('close', onClose)
    await this.#alarm.sleep(ms)
    socket.off('close', onClose)
    return lost ? 'lost' : this.#stopped ? 'stopped' : 'renew'
  }
}

/** Dials the relay and registers; resolves with the connection once the relay has switched it over. */
async function register(relay: URL, token: string): Promise<net.Socket> {
  // From a bound port: an introduction's punch dials out from this same port. Over TLS the link
  // negotiates h2, the protocol it carries once registered; the registration itself is HTTP/1.1,
  // which the relay tells apart by its first bytes.
  let socket: net.Socket
  try {
    socket = await dialRelayBound(relay, 'h2', DIAL_TIMEOUT_MS, 'the relay did not answer in time')
  } catch (err) {
    throw err instanceof Error && 'code' in err ? new Error(`cannot reach it (${String(err.code)})`) : err
  }
  try {
    socket.write(
      `POST ${REGISTER_PATH} HTTP/1.1\r\nhost: ${relay.host}\r\nconnection: upgrade\r\nupgrade: ${UPGRADE_PROTOCOL}\r\nauthorization: Bearer ${token}\r\ncontent-length: 0\r\n\r\n`,
    )
    const { head, rest } = await readAnswerHead(socket)
    const status = answerStatus(head)
    if (status !== 101) {
      const reason = rest.toString('utf8').trim().split('\n')[0]?.slice(0, 300)
      throw new Error(`registration refused (${status || 'not HTTP'}): ${reason || head.split('\r\n')[0]}`)
    }
    socket.setTimeout(0)
    socket.setKeepAlive(true, 15_000)
    socket.pause()
    if (rest.length > 0) socket.unshift(rest)
    return socket
  } catch (err) {
    socket.destroy()
    throw err instanceof Error && 'code' in err ? new Error(`cannot reach it (${String(err.code)})`) : err
  }
}
