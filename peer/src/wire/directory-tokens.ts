import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose'

/** The `scope` claim of a call token (the directory's CALL_SCOPE). */
export const CALL_SCOPE = 'peer-call'
/** The `scope` claim of a relay registration token (the directory's RELAY_SCOPE). */
export const RELAY_SCOPE = 'relay-register'

export type DirectoryKeys = ReturnType<typeof createRemoteJWKSet>

/** The directory's public keys (its JWKS), cached, fetched again when a token names an unknown key. */
export const directoryKeys = (directoryUrl: string): DirectoryKeys =>
  createRemoteJWKSet(new URL(`${directoryUrl.replace(/\/+$/, '')}/.well-known/jwks.json`), {
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  })

/**
 * The claims of a token the directory signed, unexpired; otherwise an Error saying "the token has
 * expired" or "the token is not valid for this network". No clock tolerance is needed for a minute of
 * skew: tokens carry no nbf, and holders renew theirs well before they expire.
 */
export async function directoryClaims(keys: DirectoryKeys, token: string): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, keys, { issuer: 'peerdir-directory', algorithms: ['EdDSA'] })).payload
  } catch (err) {
    const why =
      err instanceof Error && /expired/i.test(err.message) ? 'has expired' : 'is not valid for this network'
    throw new Error(`the token ${why}`)
  }
}
