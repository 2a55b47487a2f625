import { createRoute, z } from '@hono/zod-openapi'
import { ApiError } from '../errors.ts'
import { KiB, limitBody } from '../middleware/body-limit.ts'
import { requireAuth } from '../middleware/require-auth.ts'
import { createRouter } from '../router.ts'
import { CallToken, CallTokenRequest, errors, json, SessionState } from '../schemas.ts'
import { findPeer } from '../store/peers.ts'
import { openSessionPeer } from '../store/sessions.ts'

const bearer = [{ bearerAuth: [] }]

/** How long a call token lives (or the session token's lifetime, when that is shorter). */
export const CALL_TOKEN_TTL_SECONDS = 300

const issue = createRoute({
  method: 'post',
  path: '/call-tokens',
  tags: ['auth'],
  summary: 'A call token: the credential to present to one peer (the audience), refused everywhere else',
  security: bearer,
  middleware: [limitBody(64 * KiB), requireAuth()] as const,
  request: { body: { content: { 'application/json': { schema: CallTokenRequest } }, required: true } },
  responses: {
    200: json(CallToken, 'A token for calling that peer'),
    400: errors[400],
    401: errors[401],
    404: errors[404],
    413: errors[413],
    503: errors[503],
  },
})

const sessionState = createRoute({
  method: 'get',
  path: '/sessions/{sid}',
  tags: ['auth'],
  summary:
    'Whether the session a call token names (its sid) is still open; peers ask this to refuse revoked callers',
  security: bearer,
  middleware: [requireAuth()] as const,
  request: { params: z.object({ sid: z.string().min(1).max(128) }) },
  responses: { 200: json(SessionState, 'open or not'), 400: errors[400], 401: errors[401], 503: errors[503] },
})

export const callTokens = createRouter()
  .openapi(issue, async (c) => {
    const { db, settings, now } = c.get('deps')
    const { username, sessionId } = c.get('auth')
    const { audience } = c.req.valid('json')
    const peer = await findPeer(db, audience)
    if (!peer) throw new ApiError(404, 'unknown_peer', `No peer is registered as ${audience}.`)
    const grant = await c
      .get('tokens')
      .signCall(
        { username, sessionId, audience: peer.username },
        now(),
        Math.min(CALL_TOKEN_TTL_SECONDS, settings.tokenTtlSeconds),
      )
    return c.json({ token: grant.token, expiresAt: grant.expiresAt.toISOString() }, 200)
  })
  .openapi(sessionState, async (c) => {
    const session = await openSessionPeer(c.get('deps').db, c.req.valid('param').sid)
    return c.json({ open: session !== undefined }, 200)
  })
