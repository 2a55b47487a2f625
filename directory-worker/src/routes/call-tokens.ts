import { createRoute, z } from '@hono/zod-openapi'
import { CallToken, CallTokenRequest, RelayTokenRequest, SessionState } from '../../../contract/schemas.ts'
import { ApiError } from '../errors.ts'
import { KiB, limitBody } from '../middleware/body-limit.ts'
import { requireAuth, requireAuthOrOwnCallToken, requirePeerSession } from '../middleware/require-auth.ts'
import {
  bearer,
  bodyTooLarge,
  invalidInput,
  json,
  notJson,
  refusal,
  sessionTokenRefused,
  storageDown,
} from '../responses.ts'
import { createRouter } from '../router.ts'
import { findPeer, findPeerById } from '../store/peers.ts'
import { openSessionPeer } from '../store/sessions.ts'

/** How long a call token lives (or the session token's lifetime, when that is shorter). */
export const CALL_TOKEN_TTL_SECONDS = 300

const issue = createRoute({
  method: 'post',
  path: '/call-tokens',
  operationId: 'issueCallToken',
  tags: ['auth'],
  summary: 'A call token: the credential to present to one peer (the audience), refused everywhere else',
  description: `The token names the caller, its session, the audience and the audience's TLS key as listed now (aud_key, absent for a plaintext peer: a peer serving TLS refuses a token naming another key); it lives ${CALL_TOKEN_TTL_SECONDS} seconds at most, and no longer than the session token. The directory itself refuses it (call_token).`,
  security: bearer,
  middleware: [limitBody(64 * KiB), requireAuth()] as const,
  request: { body: { content: { 'application/json': { schema: CallTokenRequest } }, required: true } },
  responses: {
    200: json(CallToken, 'A token for calling that peer'),
    400: invalidInput('The body is not a valid CallTokenRequest'),
    401: sessionTokenRefused,
    404: refusal('No peer is registered under the audience name (unknown_peer)'),
    413: bodyTooLarge('64 KiB'),
    415: notJson,
    503: storageDown,
  },
})

const relayToken = createRoute({
  method: 'post',
  path: '/relay-tokens',
  operationId: 'issueRelayToken',
  tags: ['auth'],
  summary:
    'A relay registration token: the credential a peer registers with at one relay (`peer relay`), once',
  description: `The token names the peer and its session; its audience is the relay's origin and it carries a jti, so that relay takes it once and no other relay at all. It lives ${CALL_TOKEN_TTL_SECONDS} seconds at most, no longer than the session token; peers and the directory refuse it.`,
  security: bearer,
  middleware: [limitBody(64 * KiB), requireAuth(), requirePeerSession()] as const,
  request: { body: { content: { 'application/json': { schema: RelayTokenRequest } }, required: true } },
  responses: {
    200: json(CallToken, 'A token for registering with that relay'),
    400: invalidInput('The body is not a valid RelayTokenRequest'),
    401: sessionTokenRefused,
    403: refusal('A viewer session (logged in without url) has no peer to register (viewer_session)'),
    413: bodyTooLarge('64 KiB'),
    415: notJson,
    503: storageDown,
  },
})

const sessionState = createRoute({
  method: 'get',
  path: '/sessions/{sid}',
  operationId: 'getSessionState',
  tags: ['auth'],
  summary:
    'Whether the session a call token names (its sid) is still open; peers ask this to refuse revoked callers',
  description:
    'Any live session token may ask, and a call token may ask about its own session (a relay checks the peers it carries so); an unknown sid is answered as not open, not 404. up says whether the session is a peer’s whose lease runs (listed as up).',
  security: bearer,
  middleware: [requireAuthOrOwnCallToken()] as const,
  request: { params: z.object({ sid: z.string().min(1).max(128) }) },
  responses: {
    200: json(SessionState, 'open or not'),
    400: invalidInput('The sid is longer than 128 characters'),
    401: sessionTokenRefused,
    503: storageDown,
  },
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
        { username, sessionId, audience: peer.username, audienceKey: peer.key },
        now(),
        Math.min(CALL_TOKEN_TTL_SECONDS, settings.tokenTtlSeconds),
      )
    return c.json({ token: grant.token, expiresAt: grant.expiresAt.toISOString() }, 200)
  })
  .openapi(relayToken, async (c) => {
    const { settings, now } = c.get('deps')
    const { username, sessionId } = c.get('auth')
    const grant = await c
      .get('tokens')
      .signRelay(
        { username, sessionId, relay: c.req.valid('json').relay },
        now(),
        Math.min(CALL_TOKEN_TTL_SECONDS, settings.tokenTtlSeconds),
      )
    return c.json({ token: grant.token, expiresAt: grant.expiresAt.toISOString() }, 200)
  })
  .openapi(sessionState, async (c) => {
    const { db, now } = c.get('deps')
    const session = await openSessionPeer(db, c.req.valid('param').sid)
    // Up: a relay keeps a link only while its peer is listed, not merely while its session stays open.
    const peer = session && !session.viewer ? await findPeerById(db, session.peerId) : undefined
    return c.json({ open: session !== undefined, up: peer !== undefined && peer.leaseExpiresAt > now() }, 200)
  })
