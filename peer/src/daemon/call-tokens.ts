import { decodeJwt } from 'jose'
import type { CallCredentials } from '../wire/call-token.ts'
import { type DirectoryClient, DirectoryError } from '../wire/directory-client.ts'

type Held = { token: string; renewAtMs: number }

/**
 * The daemon's call tokens, one per peer it calls (the audience), asked of the directory with the
 * session token and kept until a third of their life is left: a download from eight sources costs eight requests
 * to the directory every few minutes, not one per chunk. Concurrent asks for one audience share one request.
 */
export class CallTokens implements CallCredentials {
  readonly #directory: DirectoryClient
  readonly #sessionToken: () => Promise<string | undefined> | string | undefined
  readonly #held = new Map<string, Held>()
  readonly #asking = new Map<string, Promise<string | undefined>>()

  /** `sessionToken`: the session to ask with; it may wait a moment for one that is on its way. */
  constructor(
    directory: DirectoryClient,
    sessionToken: () => Promise<string | undefined> | string | undefined,
  ) {
    this.#directory = directory
    this.#sessionToken = sessionToken
  }

  async token(audience: string): Promise<string | undefined> {
    const key = audience.toLowerCase()
    const held = this.#held.get(key)
    if (held && held.renewAtMs > Date.now()) return held.token
    let asking = this.#asking.get(key)
    if (!asking) {
      // Forgotten once settled, whichever way: attached after the set, so even an answer that needs no
      // await (no session yet) cannot leave a settled promise behind for good.
      asking = this.#ask(key, audience).finally(() => this.#asking.delete(key))
      this.#asking.set(key, asking)
    }
    return asking
  }

  refused(audience: string) {
    this.#held.delete(audience.toLowerCase())
  }

  async #ask(key: string, audience: string): Promise<string | undefined> {
    try {
      const session = await this.#sessionToken()
      if (!session) return undefined
      const asked = Date.now()
      const grant = await this.#directory.callToken(session, audience)
      // Its lifetime from its own claims, counted on our clock from when we asked: the directory's
      // clock may differ from ours. Renewed with a third of it left, room for the receiver's skew too.
      const { iat = 0, exp = 0 } = decodeJwt(grant.token)
      const renewAtMs = asked + ((exp - iat) * 1000 * 2) / 3
      if (this.#held.size > 10_000) this.#held.clear()
      this.#held.set(key, { token: grant.token, renewAtMs })
      return grant.token
    } catch (err) {
      // Directory down: call without a token (an --open peer still serves); any refusal says why.
      if (err instanceof DirectoryError && err.unreachable) return undefined
      throw err
    }
  }
}
