import { OpenAPIHono } from '@hono/zod-openapi'
import { TokenService } from './auth/tokens.ts'
import type { AppEnv, Deps } from './deps.ts'
import { notFound, toErrorResponse } from './errors.ts'
import { withDeps } from './middleware/context.ts'
import { RequestMetrics } from './middleware/metrics.ts'
import { validationError } from './router.ts'
import { adminRoutes } from './routes/admin.ts'
import { auth } from './routes/auth.ts'
import { browseRoutes } from './routes/browse.ts'
import { callTokens } from './routes/call-tokens.ts'
import { dashboard } from './routes/dashboard.tsx'
import { docsPage, openApiConfig } from './routes/docs.tsx'
import { INDEX_BODY_LIMIT, indexFiles } from './routes/index-files.ts'
import { metaRoutes } from './routes/meta.ts'
import { peerRoutes } from './routes/peers.ts'
import { presenceRoutes } from './routes/presence.ts'
import { searchRoutes } from './routes/search.ts'
import { IndexWriteSlots } from './services/index-write-slots.ts'
import { CachedNetworkStats } from './services/network-stats.ts'
import { StoredLeases } from './services/presence.ts'
import { SearchResults } from './services/search-results.ts'
import { sweepAbandonedWrites } from './store/index-replace.ts'
import { migrate } from './store/migrations.ts'
import { withStorageErrors } from './store/storage-errors.ts'

/** The one directory app: Node and Workers entries build `deps` from their env and serve this. */
export function createApp(given: Deps) {
  const deps = { ...given, db: withStorageErrors(given.db) }
  const tokens = new TokenService(deps.db, deps.signer)
  const metrics = new RequestMetrics()
  const stats = new CachedNetworkStats(deps.db)
  const search = new SearchResults(deps.db)
  const presence = deps.presence ?? new StoredLeases(deps)
  const indexWrites = new IndexWriteSlots(deps.settings.indexWritesInFlight, INDEX_BODY_LIMIT)
  const ready = lazyRetrying(async () => {
    await migrate(deps.db)
    // In the background: what a dead process left is never read, so no request waits for it.
    sweepAbandonedWrites(deps.db, deps.now()).catch((err) =>
      deps.log(`sweep of abandoned index writes failed: ${err}`),
    )
  })

  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationError })
  app.use(withDeps(deps, { tokens, metrics, stats, search, presence, indexWrites }, ready))
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  })
  for (const [name, secret] of [
    ['adminToken', 'ADMIN_TOKEN'],
    ['metricsToken', 'METRICS_TOKEN'],
  ]) {
    app.openAPIRegistry.registerComponent('securitySchemes', name as string, {
      type: 'http',
      scheme: 'bearer',
      description: `The ${secret} secret the operator set`,
    })
  }
  app
    .route('/v1', auth)
    .route('/v1', callTokens)
    .route('/v1', indexFiles)
    .route('/v1', searchRoutes)
    .route('/v1', peerRoutes)
    .route('/v1', browseRoutes)
    .route('/v1', presenceRoutes)
    .route('/v1', adminRoutes)
    .route('/', metaRoutes)
    .route('/', dashboard)
  app.doc31('/openapi.json', openApiConfig)
  // The routes are fixed once the app is built, so the docs page is rendered on first request only.
  let docs: ReturnType<typeof docsPage> | undefined
  app.get('/docs', (c) => {
    docs ??= docsPage(app.getOpenAPI31Document(openApiConfig))
    return c.html(docs)
  })
  app.notFound(notFound)
  app.onError(toErrorResponse)
  return app
}

export type DirectoryApp = ReturnType<typeof createApp>

/**
 * Runs `task` once; a failure (storage down at boot) is forgotten so the next request tries again.
 * Once it has succeeded the call answers undefined: nothing left to wait for, not even a turn.
 */
function lazyRetrying(task: () => Promise<void>): () => Promise<void> | undefined {
  let running: Promise<void> | undefined
  let done = false
  return () => {
    if (done) return undefined
    running ??= task().then(
      () => {
        done = true
      },
      (err) => {
        running = undefined
        throw err
      },
    )
    return running
  }
}
