import { timingSafeEqual } from 'node:crypto'
import { Code, ConnectError, createContextKey, type Interceptor } from '@connectrpc/connect'
import type { JWTPayload } from 'jose'
import type { DirectoryClient } from './directory-client.ts'
import { CALL_SCOPE, directoryClaims, directoryKeys } from './directory-tokens.ts'

/** The directory username of the peer calling PeerService (empty with --open and no token). */
export const callerKey = createContextKey<string>('', { description: 'calling peer' })
/** The address the call came from (a relay's, for a call it forwards): who an anonymous caller is. */
export const callerAddressKey = createContextKey<string>('', { description: 'calling address' })

const bearer = (header: string | null) => /^Bearer\s+(\S{1,8192})$/i.exec(header ?? '')?.[1]

/** How long a caller's session is trusted before the directory is asked again: the revocation delay. */
export const SESSION_CHECK_SECONDS = 10

const VERIFIED_LIMIT = 10_000

type Verified = { username: string; sessionId: string; expiresAtMs: number }

/**
 * PeerService callers must present a call token (README, Architecture: "Peer RPC") the directory signed for this peer: its
 * `scope` is a call's and its `aud` is our username (case-insensitive). Checked locally against the
 * directory's JWKS (cached, refetched when an unknown key id appears), and a token once checked is
 * remembered until it expires, so a stream of calls costs one signature check. A session token, another
 * peer's call token, an expired or forged one are refused, unless the daemon runs with --open. A
 * logged-out session's tokens are refused within SESSION_CHECK_SECONDS: the directory is asked, with our
 * own session token, whether the caller's session (the token's `sid`) is open (answers cached that long).
 * If it cannot tell (unreachable, we are logged out) the signature alone decides, so transfers go on.
 */
export function peerAuth(options: {
  directory: DirectoryClient
  open: boolean
  /** This peer's directory username: the audience its callers' tokens must name. */
  username: string
  /** The key this peer serves TLS with: its callers' tokens must name it (`aud_key`); none in plaintext. */
  key?: string
  /** This peer's own session token, to ask the directory about callers' sessions. */
  sessionToken: () => string | undefined
}): (header: string | null) => Promise<string> {
  const jwks = directoryKeys(options.directory.baseUrl)
  const self = options.username.toLowerCase()
  const verified = new Map<string, Verified>()
  const checked = new Map<string, { open: boolean; until: number }>()

  async function sessionOpen(sessionId: string): Promise<boolean> {
    const now = Date.now()
    const cached = checked.get(sessionId)
    if (cached && cached.until > now) return cached.open
    let open = true
    const token = options.sessionToken()
    if (token) {
      try {
        open = (await options.directory.sessionState(token, sessionId, 5000)).open
      } catch {
        // the directory could not tell (unreachable, our own session refused): the signature decides
      }
    }
    if (checked.size > VERIFIED_LIMIT) checked.clear()
    checked.set(sessionId, { open, until: now + SESSION_CHECK_SECONDS * 1000 })
    return open
  }

  const refuse = (why: string) => new ConnectError(why, Code.Unauthenticated)

  /** The caller a call token names, or the reason it is refused. */
  async function verifyCallToken(token: string): Promise<Verified> {
    const known = verified.get(token)
    if (known && known.expiresAtMs > Date.now()) return known
    let payload: JWTPayload
    try {
      payload = await directoryClaims(jwks, token)
    } catch (err) {
      throw refuse(`${(err as Error).message}; ask the directory for a new call token`)
    }
    if (payload.scope !== CALL_SCOPE) {
      throw refuse(
        `a session token is for the directory only; present a call token for ${options.username} (POST /v1/call-tokens)`,
      )
    }
    if (typeof payload.aud !== 'string' || payload.aud.toLowerCase() !== self) {
      throw refuse(`this call token is for ${String(payload.aud)}, not for ${options.username}`)
    }
    // Served over TLS, a token must name our key: one minted for whoever held our name at another key
    // (an old listing, an address that changed hands) is refused, wherever it was sent.
    if (options.key !== undefined && payload.aud_key !== options.key) {
      throw refuse(
        `this call token is for ${options.username} at key ${String(payload.aud_key ?? 'none (plaintext)')}, not at this peer's key ${options.key}; ask the directory for a new call token`,
      )
    }
    if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string' || typeof payload.exp !== 'number')
      throw refuse('the call token does not name its caller')
    const caller = { username: payload.sub, sessionId: payload.sid, expiresAtMs: payload.exp * 1000 }
    if (verified.size >= VERIFIED_LIMIT) verified.clear()
    verified.set(token, caller)
    return caller
  }

  return async (header) => {
    const token = bearer(header)
    if (!token) {
      if (options.open) return ''
      throw refuse(`present a call token for ${options.username} as "authorization: Bearer <token>"`)
    }
    let caller: Verified
    try {
      caller = await verifyCallToken(token)
    } catch (err) {
      if (options.open) return ''
      throw err
    }
    if (!options.open && !(await sessionOpen(caller.sessionId))) {
      throw refuse('the caller’s session was logged out; log in to the directory again')
    }
    return caller.username
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
/** True when an `authorization` header carries the daemon's control token (compared in constant time). */
export function carriesControlToken(authorization: string | null | undefined, controlToken: string): boolean {
  const expected = Buffer.from(controlToken)
  const given = Buffer.from(bearer(authorization ?? null) ?? '')
  return given.length === expected.length && timingSafeEqual(given, expected)
}

export function controlAuthInterceptor(controlToken: string): Interceptor {
  return (next) => async (req) => {
    if (!carriesControlToken(req.header.get('authorization'), controlToken)) {
      throw new ConnectError(
        'control calls need the token in this daemon’s state directory',
        Code.PermissionDenied,
      )
    }
    return next(req)
  }
}
