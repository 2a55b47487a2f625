import { createRoute, z } from '@hono/zod-openapi'
import { ApiError } from '../errors.ts'
import { requireAuthForReads } from '../middleware/require-auth.ts'
import { createRouter } from '../router.ts'
import { errors, FileVariants, json, SearchResponse, Sha256 } from '../schemas.ts'
import { SOURCES_PER_RESULT } from '../services/search-results.ts'
import { liveSources, variantKey, variantsByHash } from '../store/files.ts'

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
  summary:
    'One content by hash: its variants (holders that disagree on manifest, size or chunk size), most live holders first, each with its live sources (empty when no holder is up); the first variant also at the top',
  middleware: [requireAuthForReads()] as const,
  request: { params: z.object({ sha256: Sha256 }) },
  responses: {
    200: json(FileVariants, 'The content’s variants'),
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
    const at = now()
    const contents = await variantsByHash(db, sha256, at)
    const sources = await liveSources(db, contents, at, SOURCES_PER_RESULT)
    const [first, ...rest] = contents.map((content) => ({
      ...content,
      sources: (sources.get(variantKey(content)) ?? []).map(({ username, url }) => ({ username, url })),
    }))
    if (!first) throw new ApiError(404, 'not_found', `No peer has ever offered content ${sha256}.`)
    return c.json({ ...first, variants: [first, ...rest] }, 200)
  })
