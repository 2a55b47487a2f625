import { createRoute, z } from '@hono/zod-openapi'
import { requireAuthForReads } from '../middleware/require-auth.ts'
import { ORDERS, PEER_SORTS } from '../peer-order.ts'
import { createRouter } from '../router.ts'
import { errors, json, PeerPage, Stats } from '../schemas.ts'
import { listPeers, toPeer } from '../store/peers.ts'

const peers = createRoute({
  method: 'get',
  path: '/peers',
  tags: ['network'],
  summary: 'Registered peers, by name, a page at a time',
  middleware: [requireAuthForReads()] as const,
  request: {
    query: z.object({
      state: z.enum(['up', 'down']).optional(),
      limit: z.coerce.number().int().min(1).max(10_000).default(1000),
      offset: z.coerce.number().int().min(0).default(0),
      sort: z.enum(PEER_SORTS).default('username'),
      order: z.enum(ORDERS).default('asc'),
    }),
  },
  responses: {
    200: json(PeerPage, 'One page of peers and how many match'),
    400: errors[400],
    401: errors[401],
    503: errors[503],
  },
})

const stats = createRoute({
  method: 'get',
  path: '/stats',
  tags: ['network'],
  summary: 'The network at a glance: files, contents and bytes count what live peers offer',
  middleware: [requireAuthForReads()] as const,
  responses: { 200: json(Stats, 'Network totals'), 401: errors[401], 503: errors[503] },
})

export const peerRoutes = createRouter()
  .openapi(peers, async (c) => {
    const { state, limit, offset, sort, order } = c.req.valid('query')
    const { db, now } = c.get('deps')
    const at = now()
    const page = await listPeers(db, { state, now: at, limit, offset, sort, order })
    return c.json({ peers: page.peers.map((peer) => toPeer(peer, at)), total: page.total }, 200)
  })
  .openapi(stats, async (c) => {
    const { now } = c.get('deps')
    return c.json(await c.get('stats').get(now()), 200)
  })
