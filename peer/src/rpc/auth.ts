import { timingSafeEqual } from 'node:crypto'
import { Code, ConnectError, createContextKey, type Interceptor } from '@connectrpc/connect'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { ControlService } from '../gen/peerdir/v1/control_pb.ts'

/** The directory username of the peer calling PeerService (empty with --open and no token). */
export const callerKey = createContextKey<string>('', { description: 'calling peer' })

const bearer = (header: string | null) => /^Bearer\s+(\S{1,8192})$/i.exec(header ?? '')?.[1]

/**
 * PeerService callers must present a token the directory signed (checked against its JWKS, which is
 * cached and refetched when an unknown key id appears), unless the daemon runs with --open.
 */
export function peerAuth(options: {
  directoryUrl: string
  open: boolean
}): (header: string | null) => Promise<string> {
  const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', options.directoryUrl), {
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  })
  return async (header) => {
    const token = bearer(header)
    if (!token) {
      if (options.open) return ''
      throw new ConnectError(
        'present your directory token as "authorization: Bearer <token>"',
        Code.Unauthenticated,
      )
    }
    try {
      const { payload } = await jwtVerify(token, jwks, { issuer: 'peerdir-directory', algorithms: ['EdDSA'] })
      return typeof payload.sub === 'string' ? payload.sub : ''
    } catch (err) {
      if (options.open) return ''
      const why =
        err instanceof Error && /expired/i.test(err.message) ? 'has expired' : 'is not valid for this network'
      throw new ConnectError(`the token ${why}; log in to the directory again`, Code.Unauthenticated)
    }
  }
}

/** One interceptor: control calls need the daemon's control token, peer calls a directory token. */
export function authInterceptor(options: {
  controlToken: string
  verifyPeer: (header: string | null) => Promise<string>
}): Interceptor {
  const expected = Buffer.from(options.controlToken)
  return (next) => async (req) => {
    const header = req.header.get('authorization')
    if (req.service.typeName === ControlService.typeName) {
      const given = Buffer.from(bearer(header) ?? '')
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new ConnectError(
          'control calls need the token in this daemon’s state directory',
          Code.PermissionDenied,
        )
      }
      return next(req)
    }
    req.contextValues.set(callerKey, await options.verifyPeer(header))
    return next(req)
  }
}
