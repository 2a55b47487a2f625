import { createMiddleware } from 'hono/factory'
import type { AppEnv } from '../deps.ts'
import { ApiError } from '../errors.ts'
import { openSessionPeer } from '../store/sessions.ts'

const challenge = { 'WWW-Authenticate': 'Bearer realm="peerdir"' }

/** Accepts a bearer token this directory signed, unexpired, whose session is still open. */
export const requireAuth = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    const header = c.req.header('authorization') ?? ''
    const match = /^Bearer\s+([\w.-]{1,4096})$/i.exec(header)
    if (!match?.[1]) {
      throw new ApiError(
        401,
        'missing_token',
        'Send the token from POST /v1/login as "Authorization: Bearer <token>".',
        challenge,
      )
    }
    const { db, now } = c.var.deps
    const claims = await c.var.tokens.verify(match[1], now())
    if (!claims)
      throw new ApiError(401, 'invalid_token', 'The token is invalid or expired; log in again.', challenge)
    const peerId = await openSessionPeer(db, claims.sessionId)
    if (peerId === undefined) {
      throw new ApiError(401, 'session_revoked', 'This session was logged out; log in again.', challenge)
    }
    c.set('auth', { username: claims.username, peerId, sessionId: claims.sessionId })
    await next()
  })

/** Read endpoints are open like a public tracker's, unless READ_REQUIRES_AUTH is set. */
export const requireAuthForReads = () => {
  const auth = requireAuth()
  return createMiddleware<AppEnv>(async (c, next) => {
    if (c.var.deps.settings.readRequiresAuth) return auth(c, next)
    await next()
  })
}
