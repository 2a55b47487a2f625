import { createRoute, z } from '@hono/zod-openapi'
import { PeerPage, Stats } from '../../../contract/schemas.ts'
import { requireAuthForReads } from '../middleware/require-auth.ts'
import { ORDERS, PEER_SORTS } from '../peer-order.ts'
import { invalidInput, json, openUnlessMembersOnly, readTokenRefused, storageDown } from '../responses.ts'
import { createRouter } from '../router.ts'
import { withLastSeen } from '../services/presence.ts'
import { listPeers, toPeer } from '../store/peers.ts'

const peers = createRoute({
  method: 'get',
  path: '/peers',
  operationId: 'listPeers',
  tags: ['network'],
  summary: 'Registered peers, by name, a page at a time',
  description: 'Sorted by sort and order, optionally only those up or down; total counts every match.',
  security: openUnlessMembersOnly,
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
    400: invalidInput('A query parameter is out of its range or not one of its values'),
    401: readTokenRefused,
    503: storageDown,
  },
})

const stats = createRoute({
  method: 'get',
  path: '/stats',
  operationId: 'getStats',
  tags: ['network'],
  summary: 'The network at a glance: files, contents and bytes count what live peers offer',
  description:
    'A count is reused for ten times as long as it took (at most 30 s), so calls close together may answer the same counts.',
  security: openUnlessMembersOnly,
  middleware: [requireAuthForReads()] as const,
  responses: { 200: json(Stats, 'Network totals'), 401: readTokenRefused, 503: storageDown },
})

export const peerRoutes = createRouter()
  .openapi(peers, async (c) => {
    const { state, limit, offset, sort, order } = c.req.valid('query')
    const { db, now } = c.get('deps')
    const at = now()
    const page = await listPeers(db, { state, now: at, limit, offset, sort, order })
    const presence = c.get('presence')
    const peers = page.peers.map((peer) => toPeer(withLastSeen(presence, peer), at))
    return c.json({ peers, total: page.total }, 200)
  })
  .openapi(stats, async (c) => {
    const { now } = c.get('deps')
    return c.json(await c.get('stats').get(now()), 200)
  })
