import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose'

/** The `scope` claim of a call token (the directory's CALL_SCOPE). */
const CALL_SCOPE = 'peer-call'

export type Registrant = { username: string; sessionId: string; token: string }

/** A registration the relay refuses: the HTTP status and the one line it answers. */
export class RegistrationRefused extends Error {
  readonly status: number

  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

/**
 * Checks the token a daemon registers with: a call token the directory signed (checked against its
 * JWKS, as peers check their callers) whose audience is its own subject. Only the holder of a session of
 * that username can get one, so nobody registers under another's name; and it is good for calling that
 * peer only, so the relay that receives it can do nothing with it that it could not do anyway.
 */
export function registrationVerifier(
  directoryUrl: string,
): (header: string | undefined) => Promise<Registrant> {
  const jwks = createRemoteJWKSet(new URL(`${directoryUrl.replace(/\/+$/, '')}/.well-known/jwks.json`), {
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  })
  return async (header) => {
    const token = /^Bearer\s+([\w.-]{1,8192})$/i.exec(header ?? '')?.[1]
    if (!token) throw new RegistrationRefused(401, 'register with a call token for your own name as bearer')
    let payload: JWTPayload
    try {
      payload = (await jwtVerify(token, jwks, { issuer: 'peerdir-directory', algorithms: ['EdDSA'] })).payload
    } catch (err) {
      const why =
        err instanceof Error && /expired/i.test(err.message) ? 'has expired' : 'is not valid for this network'
      throw new RegistrationRefused(401, `the token ${why}; ask the directory for a new call token`)
    }
    if (payload.scope !== CALL_SCOPE || typeof payload.sub !== 'string' || typeof payload.sid !== 'string') {
      throw new RegistrationRefused(
        401,
        'register with a call token (POST /v1/call-tokens), not a session token',
      )
    }
    if (typeof payload.aud !== 'string' || payload.aud.toLowerCase() !== payload.sub.toLowerCase()) {
      throw new RegistrationRefused(
        403,
        `a peer registers only under its own name: this token is ${payload.sub}'s, addressed to ${String(payload.aud)}`,
      )
    }
    return { username: payload.sub, sessionId: payload.sid, token }
  }
}
