import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const KEY_BYTES = 32

/**
 * What lets a gateway request make this daemon fetch a content it does not have: an HMAC-SHA256 of the
 * content's sha256 under a key only the daemon's owner can read (`gateway.key` in the 0700 state
 * folder), carried in the URL as `?cap=`. Anyone on the machine may read what the daemon already
 * shares, as any peer may; only its owner (`peer url`, `peer cat` on the control socket) may make it
 * download, keep and share something new. One URL is good for one content, and for as long as the key
 * file lives: removing it (then restarting the daemon) revokes every URL printed before.
 */
export class GatewayCapabilities {
  readonly #key: Buffer

  constructor(key: Buffer) {
    this.#key = key
  }

  /** The key in `stateDir`, made on first use. */
  static inStateDir(stateDir: string): GatewayCapabilities {
    const path = join(stateDir, 'gateway.key')
    try {
      const key = readFileSync(path)
      if (key.length === KEY_BYTES) return new GatewayCapabilities(key)
    } catch {}
    const key = randomBytes(KEY_BYTES)
    writeFileSync(path, key, { mode: 0o600 })
    // The mode above applies only to a file it creates: one of a wrong length kept its own.
    chmodSync(path, 0o600)
    return new GatewayCapabilities(key)
  }

  /** The capability for one content (base64url, safe in a URL's query as it is). */
  for(sha256: string): string {
    return createHmac('sha256', this.#key).update(sha256).digest('base64url')
  }

  allows(sha256: string, capability: string | null): boolean {
    if (!capability) return false
    const expected = Buffer.from(this.for(sha256))
    const given = Buffer.from(capability)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }
}
