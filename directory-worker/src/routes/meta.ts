import { createRoute, z } from '@hono/zod-openapi'
import { requireMetricsToken } from '../middleware/require-auth.ts'
import { challenged, json, open, storageDown } from '../responses.ts'
import { createRouter } from '../router.ts'

const health = createRoute({
  method: 'get',
  path: '/healthz',
  operationId: 'health',
  tags: ['operations'],
  summary: 'Liveness with a storage round trip',
  description: 'Reads a table, so an unreachable or removed database answers 503 here, not only on writes.',
  security: open,
  responses: { 200: json(z.object({ ok: z.literal(true) }), 'Storage answers'), 503: storageDown },
})

const jwks = createRoute({
  method: 'get',
  path: '/.well-known/jwks.json',
  operationId: 'getJwks',
  tags: ['auth'],
  summary: 'The public keys that verify directory tokens (peers check callers with them)',
  description: 'Ed25519 keys (EdDSA) as a JSON Web Key Set; cacheable for five minutes.',
  security: open,
  responses: {
    200: json(z.object({ keys: z.array(z.record(z.string(), z.unknown())) }), 'JSON Web Key Set'),
    503: storageDown,
  },
})

const metrics = createRoute({
  method: 'get',
  path: '/metrics',
  operationId: 'getMetrics',
  tags: ['operations'],
  summary:
    'Prometheus metrics: requests by route and status, latency, peers up, files; the METRICS_TOKEN secret as bearer when set (required when reads require auth)',
  description:
    'Open while no METRICS_TOKEN is set, unless READ_REQUIRES_AUTH is: a members-only directory lets no count out without the secret.',
  security: [{}, { metricsToken: [] }],
  middleware: [requireMetricsToken()] as const,
  responses: {
    200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } },
    401: challenged(
      'METRICS_TOKEN is set and not sent as bearer (invalid_metrics_token), or none is set on a members-only directory (metrics_token_required)',
    ),
    503: storageDown,
  },
})

export const metaRoutes = createRouter()
  .openapi(health, async (c) => {
    // Touch a real table: a removed or unreadable database file must fail here, not only on writes.
    await c.get('deps').db.execute('SELECT count(*) FROM _migrations')
    return c.json({ ok: true as const }, 200)
  })
  .openapi(jwks, async (c) => {
    c.header('Cache-Control', 'public, max-age=300')
    return c.json(await c.get('tokens').jwks(), 200)
  })
  .openapi(metrics, async (c) => {
    const { now, storageRowsWritten } = c.get('deps')
    const stats = await c.get('stats').get(now())
    return c.text(c.get('metrics').render(stats, storageRowsWritten?.()), 200, {
      'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
    })
  })
