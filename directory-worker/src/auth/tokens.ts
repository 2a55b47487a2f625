import { base64url, type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK, jwtVerify } from 'jose'
import type { Database } from '../store/database.ts'
import { insertSigningKey, loadSigningKeys } from '../store/keys.ts'

export const ISSUER = 'peerdir-directory'
const ALG = 'EdDSA'

export type TokenClaims = { username: string; sessionId: string }
/** A verified token's claims with its lifetime (ms since the epoch): the heartbeat renews it at half. */
export type VerifiedClaims = TokenClaims & { issuedAtMs: number; expiresAtMs: number }
/**
 * What a call token carries beyond its caller's: the one peer (`aud`, a username) it may be presented to,
 * and that peer's TLS key as listed when it was minted (`aud_key`; absent for a plaintext peer): a peer
 * serving TLS accepts only tokens naming its own key. The directory refuses it for itself; only that peer
 * accepts it (README, "Call tokens").
 */
export type CallClaims = TokenClaims & { audience: string; audienceKey: string | null }
/** The claim naming the receiving peer's key in a call token. */
export const AUDIENCE_KEY_CLAIM = 'aud_key'
/** The `scope` claim of a call token: a session token has none. */
export const CALL_SCOPE = 'peer-call'
/** The `scope` claim of a relay registration token (POST /v1/relay-tokens). */
export const RELAY_SCOPE = 'relay-register'
export type SignedToken = { token: string; expiresAt: Date }

type KeyRing = {
  kid: string
  privateKey: CryptoKey
  /** base64url of the protected header, the same for every token this key signs. */
  header: string
  publicKeys: Map<string, CryptoKey>
  jwks: JWK[]
}

/** Signs bytes with an Ed25519 private key; a runtime may bring a faster one than WebCrypto's. */
export type Ed25519Signer = (
  privateKey: CryptoKey,
  data: Uint8Array<ArrayBuffer>,
) => Uint8Array | Promise<Uint8Array>

const webCryptoSigner: Ed25519Signer = async (privateKey, data) =>
  new Uint8Array(await crypto.subtle.sign('Ed25519', privateKey, data))

const encoder = new TextEncoder()

/** Tokens this process signed, so presenting one again (the next heartbeat) skips a signature check. */
const SIGNED_CACHE_LIMIT = 50_000
type Known = VerifiedClaims & { audience?: string }

/**
 * Signs and checks the directory's EdDSA JWTs. The key pair is made on first start and kept in the
 * database, so every process and Worker isolate over the same database signs with the same key.
 */
export class TokenService {
  readonly #db: Database
  #ring: Promise<KeyRing> | undefined
  readonly #signed = new Map<string, Known>()
  readonly #signer: Ed25519Signer

  constructor(db: Database, signer: Ed25519Signer = webCryptoSigner) {
    this.#db = db
    this.#signer = signer
  }

  /** A session token: the directory's own credential for the session (login, heartbeat). */
  sign(claims: TokenClaims, now: number, ttlSeconds: number): Promise<SignedToken> {
    return this.#sign(claims, {}, now, ttlSeconds)
  }

  /** A call token: good only at the peer named `audience`, for the caller's session (POST /v1/call-tokens). */
  signCall(claims: CallClaims, now: number, ttlSeconds: number): Promise<SignedToken> {
    const { audience, audienceKey, ...caller } = claims
    const extra: Record<string, string> = { aud: audience, scope: CALL_SCOPE }
    if (audienceKey) extra[AUDIENCE_KEY_CLAIM] = audienceKey
    return this.#sign(caller, extra, now, ttlSeconds, audience)
  }

  /**
   * A relay registration token: lets the session's peer register once, under its own name, with the
   * relay at the origin `relay` (its `aud`); a `jti` of its own lets the relay refuse it a second time.
   */
  signRelay(claims: TokenClaims & { relay: string }, now: number, ttlSeconds: number): Promise<SignedToken> {
    const { relay, ...caller } = claims
    const extra = { aud: relay, scope: RELAY_SCOPE, jti: crypto.randomUUID() }
    return this.#sign(caller, extra, now, ttlSeconds, relay)
  }

  async #sign(
    claims: TokenClaims,
    extra: Record<string, string>,
    now: number,
    ttlSeconds: number,
    audience?: string,
  ): Promise<SignedToken> {
    const ring = await this.#keys()
    const iat = Math.floor(now / 1000)
    const exp = iat + ttlSeconds
    // The JWS compact form written out (RFC 7515): jose's builder cost a third of the signature itself.
    const payload = base64url.encode(
      JSON.stringify({ sid: claims.sessionId, iss: ISSUER, sub: claims.username, ...extra, iat, exp }),
    )
    const signingInput = `${ring.header}.${payload}`
    const signature = await this.#signer(ring.privateKey, encoder.encode(signingInput))
    const token = `${signingInput}.${base64url.encode(signature)}`
    this.#remember(token, { ...claims, audience, issuedAtMs: iat * 1000, expiresAtMs: exp * 1000 })
    return { token, expiresAt: new Date(exp * 1000) }
  }

  /**
   * The claims of a token this directory signed and that has not expired; undefined otherwise. A call
   * token's (one with an audience or a scope) come with `audience`, which the directory's auth refuses.
   */
  async verify(token: string, now: number): Promise<(VerifiedClaims & { audience?: string }) | undefined> {
    const known = this.#signed.get(token)
    if (known) {
      if (known.expiresAtMs <= now) return undefined
      const { username, sessionId, audience, issuedAtMs, expiresAtMs } = known
      return { username, sessionId, audience, issuedAtMs, expiresAtMs }
    }
    const ring = await this.#keys()
    try {
      const { payload } = await jwtVerify(
        token,
        (header) => {
          const key = header.kid ? ring.publicKeys.get(header.kid) : undefined
          if (!key) throw new Error('unknown key id')
          return key
        },
        { issuer: ISSUER, algorithms: [ALG], currentDate: new Date(now) },
      )
      if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return undefined
      if (typeof payload.iat !== 'number' || typeof payload.exp !== 'number') return undefined
      const claims = {
        username: payload.sub,
        sessionId: payload.sid,
        issuedAtMs: payload.iat * 1000,
        expiresAtMs: payload.exp * 1000,
      }
      // Anything scoped or addressed is not a session token, whatever its other claims say.
      if (payload.aud !== undefined || payload.scope !== undefined)
        return { ...claims, audience: typeof payload.aud === 'string' ? payload.aud : '' }
      return claims
    } catch {
      return undefined
    }
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    return { keys: (await this.#keys()).jwks }
  }

  #remember(token: string, known: Known) {
    if (this.#signed.size >= SIGNED_CACHE_LIMIT) {
      // Map iteration is insertion order: drop the oldest tenth.
      let drop = SIGNED_CACHE_LIMIT / 10
      for (const key of this.#signed.keys()) {
        this.#signed.delete(key)
        if (--drop === 0) break
      }
    }
    this.#signed.set(token, known)
  }

  #keys(): Promise<KeyRing> {
    this.#ring ??= this.#loadOrCreate().catch((err) => {
      this.#ring = undefined
      throw err
    })
    return this.#ring
  }

  async #loadOrCreate(): Promise<KeyRing> {
    let stored = await loadSigningKeys(this.#db)
    if (stored.length === 0) {
      const pair = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true })
      const kid = crypto.randomUUID()
      const privateJwk = { ...(await exportJWK(pair.privateKey)), kid, alg: ALG, use: 'sig' }
      const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg: ALG, use: 'sig' }
      await insertSigningKey(
        this.#db,
        { kid, privateJwk: JSON.stringify(privateJwk), publicJwk: JSON.stringify(publicJwk) },
        Date.now(),
      )
      stored = await loadSigningKeys(this.#db)
    }
    const [signing] = stored
    if (!signing) throw new Error('no signing key could be stored')
    const publicKeys = new Map<string, CryptoKey>()
    const jwks: JWK[] = []
    for (const key of stored) {
      const jwk = JSON.parse(key.publicJwk) as JWK
      jwks.push(jwk)
      publicKeys.set(key.kid, (await importJWK(jwk, ALG)) as CryptoKey)
    }
    const privateKey = (await importJWK(JSON.parse(signing.privateJwk) as JWK, ALG)) as CryptoKey
    const header = base64url.encode(JSON.stringify({ alg: ALG, kid: signing.kid, typ: 'JWT' }))
    return { kid: signing.kid, privateKey, header, publicKeys, jwks }
  }
}
