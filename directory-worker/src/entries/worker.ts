import type { ExecutionContext } from 'hono'
import { createApp, type DirectoryApp } from '../app.ts'
import { errorBody } from '../errors.ts'
import { ShardedLeases } from '../services/sharded-leases.ts'
import { parseSettings } from '../settings.ts'
import { d1Writes, databaseFor, type WorkerEnv } from './worker-env.ts'

// The Durable Object class wrangler.toml binds as PRESENCE: leases sharded by peer.
export { PresenceShard } from './presence-shard.ts'

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
    presence: env.PRESENCE ? new ShardedLeases(env.PRESENCE) : undefined,
    storageRowsWritten: env.LIBSQL_URL ? undefined : () => d1Writes.rows,
    // Set by Cloudflare's edge for every request; a client cannot choose it.
    clientAddress: (c) => c.req.header('cf-connecting-ip'),
  })
  return app
}

export default {
  fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext) {
    const built = appFor(env)
    return built instanceof Response ? built : built.fetch(request, env, ctx)
  },
}
