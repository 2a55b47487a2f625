import { createRoute, z } from '@hono/zod-openapi'
import { isRelayedUrl } from '../../../contract/relayed-url.ts'
import { HeartbeatResponse, LoginRequest, LoginResponse, Peer } from '../../../contract/schemas.ts'
import { addressKey, networkKey } from '../auth/client-address.ts'
import { hashPassword, verifyPassword } from '../auth/passwords.ts'
import { ApiError } from '../errors.ts'
import { KiB, limitBody } from '../middleware/body-limit.ts'
import { requireAuth, requireSignedToken, sessionRevoked, viewerSession } from '../middleware/require-auth.ts'
import {
  bearer,
  bodyTooLarge,
  invalidInput,
  json,
  notJson,
  open,
  refusal,
  sessionTokenRefused,
  storageDown,
  throttled,
  viewerRefused,
} from '../responses.ts'
import { createRouter } from '../router.ts'
import { type Reservation, releaseLoginAttempt, reserveLoginAttempt } from '../store/login-attempts.ts'
import { findPeer, findPeerById, registerPeer, toPeer } from '../store/peers.ts'
import { openSession, openSessionPeer, revokeSession } from '../store/sessions.ts'

const LIMIT = '64 KiB'

const login = createRoute({
  method: 'post',
  path: '/login',
  operationId: 'login',
  tags: ['auth'],
  summary:
    'Log in (with REGISTRATION=open the first login registers the name) and start a lease; without url, a read-only viewer session',
  description:
    'Answers a session token (a JWT) to send as bearer, good until expiresAt and until logout. With url the peer is up for leaseSeconds and keeps the lease with POST /v1/heartbeat; without url the session is a viewer that may only read, and the peer stays as it is. Failed logins are counted per name and address; over the limit the name is locked for a while (429). A check counts from when it starts until its password proves right, so more concurrent logins of one name from one address than the limit are refused too.',
  security: open,
  middleware: [limitBody(64 * KiB)] as const,
  request: { body: { content: { 'application/json': { schema: LoginRequest } }, required: true } },
  responses: {
    200: json(LoginResponse, 'Logged in; with url the peer is up'),
    400: invalidInput('The body is not a valid LoginRequest'),
    401: refusal('Wrong password, or no such account and no url to register it with (invalid_credentials)'),
    403: refusal(
      'No such account, and this directory makes accounts only through its operator (registration_closed)',
    ),
    413: bodyTooLarge(LIMIT),
    415: notJson,
    429: throttled(
      'Too many failed or unfinished logins for this name from this address, or from addresses it has never logged in from (too_many_attempts)',
    ),
    503: storageDown,
  },
})

const logout = createRoute({
  method: 'post',
  path: '/logout',
  operationId: 'logout',
  tags: ['auth'],
  summary: 'Log out: the peer goes down and the token stops working everywhere',
  description:
    'Ends the session at once: the directory refuses its token from then on, and so do peers that ask it. A viewer session ends alone; the peer stays as it is. Takes no body.',
  security: bearer,
  middleware: [limitBody(64 * KiB), requireAuth()] as const,
  responses: {
    200: json(z.object({ peer: Peer }), 'Logged out'),
    401: sessionTokenRefused,
    413: bodyTooLarge(LIMIT),
    503: storageDown,
  },
})

const heartbeat = createRoute({
  method: 'post',
  path: '/heartbeat',
  operationId: 'heartbeat',
  tags: ['auth'],
  summary:
    'Renew the lease (about every third of the lease, with jitter); a fresh token once the current one is half used',
  description:
    'Keeps the peer up for another leaseSeconds. Once the caller’s token has used half its lifetime the answer carries a fresh session token; before that it has none, and expiresAt says when the caller’s current token expires. A peer whose lease runs out without a heartbeat is down and never offered as a source. Takes no body.',
  security: bearer,
  middleware: [limitBody(64 * KiB), requireSignedToken()] as const,
  responses: {
    200: json(HeartbeatResponse, 'Lease renewed'),
    401: sessionTokenRefused,
    403: viewerRefused,
    413: bodyTooLarge(LIMIT),
    503: storageDown,
  },
})

const session = createRoute({
  method: 'get',
  path: '/session',
  operationId: 'getSession',
  tags: ['auth'],
  summary: 'Whether a token’s session is still open (peers ask this to refuse revoked callers)',
  description: 'Answers 200 while the session is open and 401 once it is logged out or its token expired.',
  security: bearer,
  middleware: [requireAuth()] as const,
  responses: {
    200: json(z.object({ username: z.string(), open: z.literal(true) }), 'The session is open'),
    401: sessionTokenRefused,
    503: storageDown,
  },
})

function tooManyAttempts(username: string, refusal: Reservation & { admitted: false }) {
  const wait = `try again in ${refusal.retryAfterSeconds} seconds`
  return new ApiError(
    429,
    'too_many_attempts',
    refusal.scope === 'address'
      ? `Too many failed or unfinished logins for ${username} from your address; ${wait}.`
      : `Too many failed or unfinished logins for ${username} from addresses it has not logged in from; ${wait}, or log in from one it has.`,
    { 'Retry-After': String(refusal.retryAfterSeconds) },
  )
}

export const auth = createRouter()
  .openapi(login, async (c) => {
    const { username, password, url, key } = c.req.valid('json')
    // A relayed URL is the relay's, whatever its scheme: the peer's TLS runs inside the relay's tunnel.
    if (key && !url?.startsWith('https://') && !(url && isRelayedUrl(url))) {
      throw new ApiError(
        400,
        'invalid_request',
        'key: only a peer serving TLS (an https:// url, or a relayed one) has a key.',
      )
    }
    const { db, settings, now } = c.get('deps')
    const existing = await findPeer(db, username)
    if (!existing && settings.registration === 'closed') {
      throw new ApiError(
        403,
        'registration_closed',
        `No account ${username} here, and this directory makes accounts only through its operator; ask them for one.`,
      )
    }
    if (!existing && !url) {
      throw new ApiError(
        401,
        'invalid_credentials',
        `No account ${username}; the first login must come from the peer, with its url.`,
      )
    }
    const peer =
      existing ??
      (await registerPeer(db, {
        username,
        passwordHash: await hashPassword(password),
        url: url ?? '',
        now: now(),
      }))
    // Reserved before the check, so concurrent guesses cannot all pass a check of the count.
    const client = c.get('deps').clientAddress?.(c)
    const address = addressKey(client)
    const reservation = await reserveLoginAttempt(db, username, address, now(), {
      maxFailures: settings.loginMaxFailures,
      maxFailuresPerName: settings.loginMaxFailuresPerName,
      lockSeconds: settings.loginLockSeconds,
    })
    if (!reservation.admitted) throw tooManyAttempts(username, reservation)
    if (!(await verifyPassword(password, peer.passwordHash))) {
      throw new ApiError(401, 'invalid_credentials', `Wrong password for ${username}.`)
    }
    await releaseLoginAttempt(db, username, address, reservation, now())
    const sessionId = crypto.randomUUID()
    await openSession(db, sessionId, peer.id, now(), !url, key ?? null)
    // Without a url this is a viewer session (the dashboard): it may read, but the peer stays as it is.
    if (url) {
      await c
        .get('presence')
        .up({ peerId: peer.id, sessionId, username: peer.username }, url, networkKey(client))
    }
    const grant = await c
      .get('tokens')
      .sign({ username: peer.username, sessionId }, now(), settings.tokenTtlSeconds)
    const current = await findPeerById(db, peer.id)
    if (!current) throw new Error('peer vanished during login')
    return c.json(
      {
        token: grant.token,
        expiresAt: grant.expiresAt.toISOString(),
        leaseSeconds: settings.leaseSeconds,
        peer: toPeer(current, now()),
      },
      200,
    )
  })
  .openapi(logout, async (c) => {
    const { db, now } = c.get('deps')
    const { sessionId, peerId, viewer, username } = c.get('auth')
    await revokeSession(db, sessionId, now())
    // A viewer (the dashboard) logging out ends only its own session; the peer stays as it is.
    if (!viewer) await c.get('presence').down({ peerId, sessionId, username })
    const peer = await findPeerById(db, peerId)
    if (!peer) throw new Error('peer vanished during logout')
    return c.json({ peer: toPeer(peer, now()) }, 200)
  })
  .openapi(session, (c) => c.json({ username: c.get('auth').username, open: true as const }, 200))
  .openapi(heartbeat, async (c) => {
    const { db, settings, now } = c.get('deps')
    const { sessionId, username, issuedAtMs, expiresAtMs } = c.get('claims')
    // The renewal checks the session itself; only a refusal needs a second look to say why.
    if (!(await c.get('presence').renew(sessionId, username))) {
      throw (await openSessionPeer(db, sessionId))?.viewer ? viewerSession() : sessionRevoked()
    }
    const { leaseSeconds, tokenTtlSeconds } = settings
    // Signing is a third of a heartbeat's cost: a token is renewed only once it has used half its life.
    const at = now()
    if (at - issuedAtMs < (expiresAtMs - issuedAtMs) / 2) {
      return c.json({ expiresAt: new Date(expiresAtMs).toISOString(), leaseSeconds }, 200)
    }
    const grant = await c.get('tokens').sign({ username, sessionId }, at, tokenTtlSeconds)
    return c.json({ token: grant.token, expiresAt: grant.expiresAt.toISOString(), leaseSeconds }, 200)
  })
