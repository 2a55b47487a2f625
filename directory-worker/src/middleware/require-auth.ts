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
    const session = await openSessionPeer(db, claims.sessionId)
    if (session === undefined) {
      throw new ApiError(401, 'session_revoked', 'This session was logged out; log in again.', challenge)
    }
    c.set('auth', { username: claims.username, sessionId: claims.sessionId, ...session })
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

/** Writes on behalf of the peer (heartbeat, index) need a peer session, not a viewer one. */
export const requirePeerSession = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (c.var.auth.viewer) {
      throw new ApiError(
        403,
        'viewer_session',
        'This session was opened without a url and may only read; log in with your peer url to act for it.',
      )
    }
    await next()
  })
