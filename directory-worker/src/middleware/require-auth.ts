import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import { secretMatches } from '../auth/secrets.ts'
import type { VerifiedClaims } from '../auth/tokens.ts'
import type { AppEnv } from '../deps.ts'
import { ApiError } from '../errors.ts'
import { openSessionPeer } from '../store/sessions.ts'

const challenge = { 'WWW-Authenticate': 'Bearer realm="peerdir"' }

/** A bearer secret as sent; an operator's secret may hold any printable character, spaces too. */
const bearerValue = (c: Context<AppEnv>) =>
  /^Bearer\s+(.{1,4096})$/i.exec(c.req.header('authorization') ?? '')?.[1]?.trim() || undefined

/** The request presents the operator's secret `name` as its bearer token (compared in constant time); 401 otherwise. */
async function requireSecret(c: Context<AppEnv>, secret: string, name: string, code: string) {
  const presented = bearerValue(c)
  if (presented && (await secretMatches(presented, secret))) return
  throw new ApiError(401, code, `Send the ${name} secret as "Authorization: Bearer <secret>".`, challenge)
}

/**
 * A browser's WebSocket cannot set headers: it may send its token as a subprotocol instead,
 * `Sec-WebSocket-Protocol: peerdir.v1, bearer.<token>` (answered with peerdir.v1 alone).
 */
const protocolBearer = (c: Context<AppEnv>) =>
  /(?:^|,)\s*bearer\.([\w.-]{1,4096})\s*(?:,|$)/.exec(c.req.header('sec-websocket-protocol') ?? '')?.[1]

/** The claims of the request's bearer token (session or call token), signed by this directory and unexpired; 401 otherwise. */
async function signedClaims(c: Context<AppEnv>, fromProtocol = false) {
  const header = c.req.header('authorization') ?? ''
  const token =
    /^Bearer\s+([\w.-]{1,4096})$/i.exec(header)?.[1] ?? (fromProtocol ? protocolBearer(c) : undefined)
  if (!token) {
    throw new ApiError(
      401,
      'missing_token',
      'Send the token from POST /v1/login as "Authorization: Bearer <token>".',
      challenge,
    )
  }
  const claims = await c.get('tokens').verify(token, c.get('deps').now())
  if (!claims)
    throw new ApiError(401, 'invalid_token', 'The token is invalid or expired; log in again.', challenge)
  return claims
}

/** The claims of the request's session token; 401 for any other bearer, call tokens included. */
async function bearerClaims(c: Context<AppEnv>, fromProtocol = false): Promise<VerifiedClaims> {
  const claims = await signedClaims(c, fromProtocol)
  if (claims.audience !== undefined) {
    throw new ApiError(
      401,
      'call_token',
      'This is a call token, good only for calling one peer; the directory takes the session token from POST /v1/login.',
      challenge,
    )
  }
  const { username, sessionId, issuedAtMs, expiresAtMs } = claims
  return { username, sessionId, issuedAtMs, expiresAtMs }
}

export const sessionRevoked = () =>
  new ApiError(401, 'session_revoked', 'This session was logged out; log in again.', challenge)

/**
 * Accepts a bearer token this directory signed, unexpired, whose session is still open; with
 * `fromProtocol` (the presence socket) also as the `bearer.<token>` WebSocket subprotocol.
 */
export const requireAuth = (fromProtocol = false) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const claims = await bearerClaims(c, fromProtocol)
    const session = await openSessionPeer(c.get('deps').db, claims.sessionId)
    if (session === undefined) throw sessionRevoked()
    c.set('auth', { username: claims.username, sessionId: claims.sessionId, ...session })
    await next()
  })

/**
 * For the session-state check: a live session token (as requireAuth), or a call token asking about its
 * own session. A relay has no account; it checks with a registered peer's own call token that the peer's
 * session is still open, and that token tells it nothing it did not already know.
 */
export const requireAuthOrOwnCallToken = () => {
  const auth = requireAuth()
  return createMiddleware<AppEnv>(async (c, next) => {
    const claims = await signedClaims(c)
    if (claims.audience === undefined) return auth(c, next)
    if (claims.sessionId !== c.req.param('sid')) {
      throw new ApiError(
        401,
        'call_token',
        'A call token may ask only about its own session; other sessions need the session token from POST /v1/login.',
        challenge,
      )
    }
    await next()
  })
}

/**
 * Only the token's signature and expiry: for a handler whose own statement checks the session in
 * the same step as its write (the heartbeat), so the hot path makes one round trip, not two.
 */
export const requireSignedToken = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    c.set('claims', await bearerClaims(c))
    await next()
  })

/** Read endpoints are open like a public tracker's, unless READ_REQUIRES_AUTH is set. */
export const requireAuthForReads = () => {
  const auth = requireAuth()
  return createMiddleware<AppEnv>(async (c, next) => {
    if (c.get('deps').settings.readRequiresAuth) return auth(c, next)
    await next()
  })
}

/** Writes on behalf of the peer (heartbeat, index) need a peer session, not a viewer one. */
export const requirePeerSession = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (c.get('auth').viewer) throw viewerSession()
    await next()
  })

export const viewerSession = () =>
  new ApiError(
    403,
    'viewer_session',
    'This session was opened without a url and may only read; log in with your peer url to act for it.',
  )

/** The admin calls: the ADMIN_TOKEN secret as bearer token; off (403) while no secret is set. */
export const requireAdminToken = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    const expected = c.get('deps').settings.adminToken
    if (!expected) {
      throw new ApiError(
        403,
        'admin_disabled',
        'Admin calls are off on this directory; set the ADMIN_TOKEN secret (at least 16 characters) to use them.',
      )
    }
    await requireSecret(c, expected, 'ADMIN_TOKEN', 'invalid_admin_token')
    await next()
  })

/**
 * /metrics: the METRICS_TOKEN secret as bearer token when one is set. Without one it is open, unless
 * reads require auth: then no count leaves the directory, so it refuses and says how to scrape it.
 */
export const requireMetricsToken = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    const { metricsToken, readRequiresAuth } = c.get('deps').settings
    if (metricsToken) {
      await requireSecret(c, metricsToken, 'METRICS_TOKEN', 'invalid_metrics_token')
    } else if (readRequiresAuth) {
      throw new ApiError(
        401,
        'metrics_token_required',
        'This directory is members-only, so /metrics needs a secret: set METRICS_TOKEN and scrape with "Authorization: Bearer <secret>".',
        challenge,
      )
    }
    await next()
  })
