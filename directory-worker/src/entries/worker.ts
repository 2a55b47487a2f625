import { createClient } from '@libsql/client/web'
import type { ExecutionContext } from 'hono'
import { createApp, type DirectoryApp } from '../app.ts'
import { errorBody } from '../errors.ts'
import { parseSettings } from '../settings.ts'
import { type D1Binding, d1Database } from '../store/d1-client.ts'
import type { Database } from '../store/database.ts'

type WorkerEnv = {
  /** The D1 database declared in wrangler.toml (local SQLite under .wrangler/state in wrangler dev). */
  DB?: D1Binding
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

// One app per isolate: the key ring, metrics and migration state live as long as the isolate does.
let app: DirectoryApp | undefined

function appFor(env: WorkerEnv): DirectoryApp | Response {
  if (app) return app
  const db = databaseFor(env)
  if (!db) {
    return Response.json(
      errorBody(
        'storage_unavailable',
        'The directory has no database: declare the D1 binding DB in wrangler.toml, or set LIBSQL_URL (and LIBSQL_AUTH_TOKEN).',
      ),
      { status: 503 },
    )
  }
  app = createApp({
    db,
    settings: parseSettings(env),
    now: Date.now,
    log: (line) => console.log(line),
    // Set by Cloudflare's edge for every request; a client cannot choose it.
    clientAddress: (c) => c.req.header('cf-connecting-ip'),
  })
  return app
}

/** LIBSQL_URL (remote libSQL, Turso) when set, else the D1 binding DB, else none. */
function databaseFor(env: WorkerEnv): Database | undefined {
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
  return env.DB ? d1Database(env.DB) : undefined
}

export default {
  fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext) {
    const built = appFor(env)
    return built instanceof Response ? built : built.fetch(request, env, ctx)
  },
}
