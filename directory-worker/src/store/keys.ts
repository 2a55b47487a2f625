import type { Database } from './database.ts'

export type StoredKey = { kid: string; privateJwk: string; publicJwk: string }

export async function loadSigningKeys(db: Database): Promise<StoredKey[]> {
  const result = await db.execute('SELECT kid, private_jwk, public_jwk FROM signing_keys ORDER BY created_at')
  return result.rows.map((row) => ({
    kid: String(row.kid),
    privateJwk: String(row.private_jwk),
    publicJwk: String(row.public_jwk),
  }))
}

export async function insertSigningKey(db: Database, key: StoredKey, now: number) {
  await db.execute({
    sql: 'INSERT INTO signing_keys (kid, private_jwk, public_jwk, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
    args: [key.kid, key.privateJwk, key.publicJwk, now],
  })
}
