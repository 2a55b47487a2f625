import { createClient } from '@libsql/client/web'
import type { ShardNamespace } from '../services/sharded-leases.ts'
import { type D1Binding, d1Database } from '../store/d1-client.ts'
import type { Database } from '../store/database.ts'

export type WorkerEnv = {
  /** The D1 database declared in wrangler.toml (local SQLite under .wrangler/state in wrangler dev). */
  DB?: D1Binding
  /** The Durable Object class PresenceShard (wrangler.toml): where leases live; without it, in the database. */
  PRESENCE?: ShardNamespace
  LIBSQL_URL?: string
  LIBSQL_AUTH_TOKEN?: string
  LEASE_SECONDS?: string
  TOKEN_TTL_SECONDS?: string
  READ_REQUIRES_AUTH?: string
  REGISTRATION?: string
  /** Secrets: npx wrangler secret put ADMIN_TOKEN / METRICS_TOKEN */
  ADMIN_TOKEN?: string
  METRICS_TOKEN?: string
}

/**
 * D1 rows written by this isolate (its requests and the presence shards it runs), from D1's own
 * `meta.rows_written`: what D1 bills. /metrics shows it; the Workers tests and the rows bench read it.
 */
export const d1Writes = { rows: 0 }

/** LIBSQL_URL (remote libSQL, Turso) when set, else the D1 binding DB, else none. */
export function databaseFor(env: WorkerEnv): Database | undefined {
  if (env.LIBSQL_URL) {
    // No client-side queue: past its limit (20 by default) the client starts a queued statement when
    // another request's statement ends, so inside that other request, and workerd cancels the waiting
    // request as hung (seen with 30 concurrent logins). Workers cap connections per request anyway.
    return createClient({
      url: env.LIBSQL_URL,
      authToken: env.LIBSQL_AUTH_TOKEN,
      concurrency: Number.MAX_SAFE_INTEGER,
    })
  }
  return env.DB
    ? d1Database(env.DB, (rows) => {
        d1Writes.rows += rows
      })
    : undefined
}
