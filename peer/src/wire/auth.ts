import { timingSafeEqual } from 'node:crypto'
import { Code, ConnectError, createContextKey, type Interceptor } from '@connectrpc/connect'
import { createRemoteJWKSet, jwtVerify } from 'jose'

/** The directory username of the peer calling PeerService (empty with --open and no token). */
export const callerKey = createContextKey<string>('', { description: 'calling peer' })

const bearer = (header: string | null) => /^Bearer\s+(\S{1,8192})$/i.exec(header ?? '')?.[1]

/** How long a caller's session is trusted before the directory is asked again: the revocation delay. */
export const SESSION_CHECK_SECONDS = 10

/**
 * PeerService callers must present a token the directory signed (checked against its JWKS, which is
 * cached and refetched when an unknown key id appears), unless the daemon runs with --open. A logged-out
 * session's token is refused within SESSION_CHECK_SECONDS: the directory is asked whether the session is
 * open (answers cached that long). If the directory cannot be reached the signature alone decides, so
 * transfers go on while it is down.
 */
export function peerAuth(options: {
  directoryUrl: string
  open: boolean
}): (header: string | null) => Promise<string> {
  const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', options.directoryUrl), {
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  })
  const checked = new Map<string, { open: boolean; until: number }>()

  async function sessionOpen(token: string): Promise<boolean> {
    const now = Date.now()
    const cached = checked.get(token)
    if (cached && cached.until > now) return cached.open
    let open = true
    try {
      const response = await fetch(new URL('/v1/session', options.directoryUrl), {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(5000),
      })
      await response.arrayBuffer()
      open = response.status !== 401
    } catch {
      // directory unreachable: the signature already proved the token; do not stall transfers
    }
    if (checked.size > 10_000) checked.clear()
    checked.set(token, { open, until: now + SESSION_CHECK_SECONDS * 1000 })
    return open
  }

  return async (header) => {
    const token = bearer(header)
    if (!token) {
      if (options.open) return ''
      throw new ConnectError(
        'present your directory token as "authorization: Bearer <token>"',
        Code.Unauthenticated,
      )
    }
    let username: string
    try {
      // No clock tolerance is needed for a minute of skew: tokens carry no nbf, and callers renew theirs
      // every third of a lease, so a token in use always has most of its TOKEN_TTL_SECONDS left.
      const { payload } = await jwtVerify(token, jwks, { issuer: 'peerdir-directory', algorithms: ['EdDSA'] })
      username = typeof payload.sub === 'string' ? payload.sub : ''
    } catch (err) {
      if (options.open) return ''
      const why =
        err instanceof Error && /expired/i.test(err.message) ? 'has expired' : 'is not valid for this network'
      throw new ConnectError(`the token ${why}; log in to the directory again`, Code.Unauthenticated)
    }
    if (!options.open && !(await sessionOpen(token))) {
      throw new ConnectError(
        'the token’s session was logged out; log in to the directory again',
        Code.Unauthenticated,
      )
    }
    return username
  }
}

/** PeerService calls (the network port) need a directory token; the caller's name goes in the context. */
export function peerAuthInterceptor(verifyPeer: (header: string | null) => Promise<string>): Interceptor {
  return (next) => async (req) => {
    req.contextValues.set(callerKey, await verifyPeer(req.header.get('authorization')))
    return next(req)
  }
}

/**
 * ControlService calls (the state directory's Unix socket) need the daemon's control token as well:
 * the folder's mode keeps other users out, the token anyone the folder was handed to by mistake.
 */
export function controlAuthInterceptor(controlToken: string): Interceptor {
  const expected = Buffer.from(controlToken)
  return (next) => async (req) => {
    const given = Buffer.from(bearer(req.header.get('authorization')) ?? '')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new ConnectError(
        'control calls need the token in this daemon’s state directory',
        Code.PermissionDenied,
      )
    }
    return next(req)
  }
}
