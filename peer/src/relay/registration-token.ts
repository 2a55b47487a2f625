import type { JWTPayload } from 'jose'
import { type DirectoryKeys, directoryClaims, RELAY_SCOPE } from '../wire/directory-tokens.ts'

export type Registrant = { username: string; sessionId: string; token: string; issuedAt: number }

/** A registration the relay refuses: the HTTP status and the one line it answers. */
export class RegistrationRefused extends Error {
  readonly status: number

  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

/** Token ids seen, until their tokens expire; past this many the oldest are forgotten early. */
const SEEN_LIMIT = 100_000

/**
 * Checks the token a daemon registers with: a relay token the directory signed (checked against its
 * JWKS) for this relay's origin (from its configuration, never from the request: a Host header naming
 * another relay must not make its tokens good here), which only the holder of a session of that username can get, and which
 * is taken once. So nobody registers under another's name, a token seen on the way (or by another relay)
 * registers no one, and the token the relay keeps is good for nothing but asking whether that session is
 * still open.
 */
export function registrationVerifier(
  keys: DirectoryKeys,
  origins: ReadonlySet<string>,
): (header: string | undefined) => Promise<Registrant> {
  const seen = new Map<string, number>()
  const remember = (jti: string, expiresAtMs: number) => {
    const now = Date.now()
    for (const [id, until] of seen) {
      if (until > now && seen.size < SEEN_LIMIT) break
      seen.delete(id)
    }
    seen.set(jti, expiresAtMs)
  }
  const own = [...origins][0]
  return async (header) => {
    const token = /^Bearer\s+([\w.-]{1,8192})$/i.exec(header ?? '')?.[1]
    if (!token)
      throw new RegistrationRefused(401, 'register with a relay token (POST /v1/relay-tokens) as bearer')
    let payload: JWTPayload
    try {
      payload = await directoryClaims(keys, token)
    } catch (err) {
      throw new RegistrationRefused(401, `${(err as Error).message}; ask the directory for a new relay token`)
    }
    const { scope, sub, sid, aud, jti, iat, exp } = payload
    if (
      scope !== RELAY_SCOPE ||
      typeof sub !== 'string' ||
      typeof sid !== 'string' ||
      typeof jti !== 'string'
    ) {
      throw new RegistrationRefused(
        401,
        'register with a relay token (POST /v1/relay-tokens), not another token',
      )
    }
    if (typeof aud !== 'string' || !origins.has(aud)) {
      throw new RegistrationRefused(
        403,
        `this relay token is for the relay at ${String(aud)}, not ${own} (a relay reached at another address says so with --public-url)`,
      )
    }
    if (seen.has(jti))
      throw new RegistrationRefused(403, 'this relay token was used already; ask for a new one')
    remember(jti, (exp ?? 0) * 1000)
    return { username: sub, sessionId: sid, token, issuedAt: iat ?? 0 }
  }
}
