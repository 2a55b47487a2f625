import { createLocalJWKSet, jwtVerify } from 'jose'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { nodeEd25519Signer } from '../../directory-worker/src/auth/node-signer.ts'
import { CALL_SCOPE, ISSUER, TokenService } from '../../directory-worker/src/auth/tokens.ts'
import { migrate } from '../../directory-worker/src/store/migrations.ts'
import { createTestDirectory, type TestDirectory } from '../support/directory-app.ts'

let directory: TestDirectory
beforeEach(async () => {
  directory = createTestDirectory()
  await migrate(directory.db)
})
afterEach(() => directory.close())

describe('token signing', () => {
  it('gives the same standard EdDSA JWT with WebCrypto (Workers) and with Node’s crypto', async () => {
    const web = new TokenService(directory.db)
    const node = new TokenService(directory.db, nodeEd25519Signer)
    const claims = { username: 'alice', sessionId: 'session-1' }
    const now = Date.UTC(2026, 0, 1)
    const fromWeb = await web.sign(claims, now, 900)
    const fromNode = await node.sign(claims, now, 900)
    // Ed25519 signatures are deterministic: one key and one input give one token.
    expect(fromNode.token).toBe(fromWeb.token)

    const { payload, protectedHeader } = await jwtVerify(
      fromNode.token,
      createLocalJWKSet(await web.jwks()),
      { issuer: ISSUER, algorithms: ['EdDSA'], currentDate: new Date(now) },
    )
    expect(protectedHeader).toMatchObject({ alg: 'EdDSA', typ: 'JWT' })
    expect(payload).toEqual({
      sid: 'session-1',
      sub: 'alice',
      iss: ISSUER,
      iat: now / 1000,
      exp: now / 1000 + 900,
    })
    // A service that did not sign it (no shortcut through its own memory) still verifies it.
    expect(await new TokenService(directory.db).verify(fromNode.token, now)).toEqual({
      ...claims,
      issuedAtMs: now,
      expiresAtMs: now + 900_000,
    })
    expect(fromNode.expiresAt.getTime()).toBe(now + 900_000)
  })
})

describe('call tokens', () => {
  it('carry the audience and scope, and verify says so, from memory and from the signature alike', async () => {
    const signer = new TokenService(directory.db, nodeEd25519Signer)
    const now = Date.UTC(2026, 0, 1)
    const claims = { username: 'alice', sessionId: 'session-1', audience: 'bob', audienceKey: null }
    const { token } = await signer.signCall(claims, now, 300)
    const { payload } = await jwtVerify(token, createLocalJWKSet(await signer.jwks()), {
      issuer: ISSUER,
      algorithms: ['EdDSA'],
      currentDate: new Date(now),
    })
    expect(payload).toEqual({
      sid: 'session-1',
      sub: 'alice',
      aud: 'bob',
      scope: CALL_SCOPE,
      iss: ISSUER,
      iat: now / 1000,
      exp: now / 1000 + 300,
    })
    // The token's lifetime too, which the heartbeat renews at half.
    const { audienceKey: _, ...caller } = claims
    const verified = { ...caller, issuedAtMs: now, expiresAtMs: now + 300_000 }
    expect(await signer.verify(token, now)).toEqual(verified)
    expect(await new TokenService(directory.db).verify(token, now)).toEqual(verified)
    // A session token has no audience: only its absence lets the directory's auth accept it.
    const session = await signer.sign({ username: 'alice', sessionId: 'session-1' }, now, 300)
    expect((await new TokenService(directory.db).verify(session.token, now))?.audience).toBeUndefined()
    expect(await signer.verify(token, now + 300_000)).toBeUndefined()
  })
})
