import { CALL_SCOPE, type DirectoryKeys, directoryClaims } from '../wire/directory-tokens.ts'

export type Caller = { subject: string; audience: string }

const VERIFIED_LIMIT = 10_000

/**
 * The relay's check of a call's token, before it forwards anything: a call token the directory signed,
 * unexpired. The relayed peer checks it again itself (and whether its session is open); the relay checks
 * so that only accounts of the network hold calls through it, each counted by its name. A token once
 * checked is remembered until it expires, so a stream of calls costs one signature check.
 */
export function callerVerifier(keys: DirectoryKeys): (token: string) => Promise<Caller> {
  const verified = new Map<string, Caller & { expiresAtMs: number }>()
  return async (token) => {
    const known = verified.get(token)
    if (known && known.expiresAtMs > Date.now()) return known
    const { scope, sub, aud, exp } = await directoryClaims(keys, token)
    if (
      scope !== CALL_SCOPE ||
      typeof sub !== 'string' ||
      typeof aud !== 'string' ||
      typeof exp !== 'number'
    ) {
      throw new Error('present a call token for the peer you call (POST /v1/call-tokens)')
    }
    const caller = { subject: sub, audience: aud, expiresAtMs: exp * 1000 }
    if (verified.size >= VERIFIED_LIMIT) verified.clear()
    verified.set(token, caller)
    return caller
  }
}
