import { createRoute, z } from '@hono/zod-openapi'
import { ApiError } from '../errors.ts'
import { requireAuthForReads } from '../middleware/require-auth.ts'
import { createRouter } from '../router.ts'
import { errors, json, Result, SearchResponse, Sha256 } from '../schemas.ts'
import { SOURCES_PER_RESULT } from '../services/search-results.ts'
import { contentByHash, liveSources } from '../store/files.ts'

const SearchQuery = z
  .object({
    q: z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters').optional(),
    sha256: Sha256.optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
  })
  .refine((query) => (query.q === undefined) !== (query.sha256 === undefined), {
    message: 'give exactly one of q (text in file names) or sha256 (a content hash)',
  })

const search = createRoute({
  method: 'get',
  path: '/search',
  tags: ['search'],
  summary: 'Find contents by a case-insensitive substring of their name, or by hash',
  middleware: [requireAuthForReads()] as const,
  request: { query: SearchQuery },
  responses: {
    200: json(SearchResponse, 'Contents with live sources, best first'),
    400: errors[400],
    401: errors[401],
    503: errors[503],
  },
})

const fileByHash = createRoute({
  method: 'get',
  path: '/files/{sha256}',
  tags: ['search'],
  summary: 'One content by hash with its live sources (empty when no holder is up)',
  middleware: [requireAuthForReads()] as const,
  request: { params: z.object({ sha256: Sha256 }) },
  responses: {
    200: json(Result, 'The content'),
    400: errors[400],
    401: errors[401],
    404: errors[404],
    503: errors[503],
  },
})

export const searchRoutes = createRouter()
  .openapi(search, async (c) => {
    const { q, sha256, limit } = c.req.valid('query')
    const { now } = c.get('deps')
    const found = sha256
      ? await c.get('search').byHash(sha256, now())
      : await c.get('search').byName(q ?? '', now(), limit)
    const body = found.json(sha256 ?? q ?? '')
    // The bytes are the text c.json would write for this route's typed answer (Found.json), so
    // the typed response the route declares is what goes out; the cast only carries that type.
    return c.body(body, 200, { 'Content-Type': 'application/json' }) as never
  })
  .openapi(fileByHash, async (c) => {
    const { sha256 } = c.req.valid('param')
    const { db, now } = c.get('deps')
    const content = await contentByHash(db, sha256)
    if (!content) throw new ApiError(404, 'not_found', `No peer has ever offered content ${sha256}.`)
    const sources = (await liveSources(db, [sha256], now(), SOURCES_PER_RESULT)).get(sha256) ?? []
    return c.json({ ...content, sources: sources.map(({ username, url }) => ({ username, url })) }, 200)
  })
