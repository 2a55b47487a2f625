import { createRoute, z } from '@hono/zod-openapi'
import { FileVariants, SearchCursor, SearchResponse, Sha256 } from '../../../contract/schemas.ts'
import { ApiError } from '../errors.ts'
import { requireAuthForReads } from '../middleware/require-auth.ts'
import {
  invalidInput,
  json,
  openUnlessMembersOnly,
  readTokenRefused,
  refusal,
  storageDown,
} from '../responses.ts'
import { createRouter } from '../router.ts'
import { decodeCursor } from '../services/search-cursor.ts'
import { NAME_SEARCH_SOURCES, SOURCES_PER_RESULT } from '../services/search-results.ts'
import { liveSources, variantKey, variantsByHash } from '../store/files.ts'

const EXACTLY_ONE = 'Give exactly one of q and sha256: neither or both is answered 400.'

const SearchQuery = z
  .object({
    q: z
      .string()
      .min(1, 'must not be empty')
      .max(256, 'must be at most 256 characters')
      .optional()
      .openapi({
        description: `Text to find in file names, case-insensitive. ${EXACTLY_ONE}`,
        example: 'song',
      }),
    sha256: Sha256.optional().openapi({
      description: `A content hash: finds that content's variants. ${EXACTLY_ONE}`,
    }),
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(500)
      .default(50)
      .openapi({ description: 'The most results a name search answers; a hash search ignores it' }),
    sources: z.coerce
      .number()
      .int()
      .min(1)
      .max(SOURCES_PER_RESULT)
      .default(NAME_SEARCH_SOURCES)
      .openapi({
        description: `The most live sources each result of a name search lists (sourceCount counts them all); a hash search lists up to ${SOURCES_PER_RESULT}`,
      }),
    since: SearchCursor.refine((cursor) => decodeCursor(cursor) !== undefined, {
      message: 'must be the cursor of an earlier search answer',
    })
      .optional()
      .openapi({
        description:
          'The cursor of an earlier answer: only files published after it (by any holder, a new holder of old content included) are answered, ranked the same. A holder republishing what it held is not news.',
      }),
  })
  .refine((query) => (query.q === undefined) !== (query.sha256 === undefined), {
    message: 'give exactly one of q (text in file names) or sha256 (a content hash)',
  })

const search = createRoute({
  method: 'get',
  path: '/search',
  operationId: 'search',
  tags: ['search'],
  summary: 'Find contents by a case-insensitive substring of their name, or by hash',
  description: `${EXACTLY_ONE} By name: contents whose name holds q, ranked exact, then prefix, then substring, at most limit of them, each with at most sources of its live holders. By hash: that content's variants, each with up to ${SOURCES_PER_RESULT}. Only contents with a live source are answered; sourceCount counts each one's live holders. Every answer has a cursor; since=<cursor> answers only what was published after it.`,
  security: openUnlessMembersOnly,
  middleware: [requireAuthForReads()] as const,
  request: { query: SearchQuery },
  responses: {
    200: json(SearchResponse, 'Contents with live sources, best first'),
    400: invalidInput(
      `Neither or both of q and sha256, q empty or over 256 characters, sha256 not 64 lower-case hex, limit not 1-500, sources not 1-${SOURCES_PER_RESULT}, or since not a cursor this directory gave`,
    ),
    401: readTokenRefused,
    503: storageDown,
  },
})

const fileByHash = createRoute({
  method: 'get',
  path: '/files/{sha256}',
  operationId: 'getFile',
  tags: ['search'],
  summary:
    'One content by hash: its variants (holders that disagree on manifest, size or chunk size), at most 32 in the order to try them (each network’s best before any network’s second, so a flood of accounts from a few networks cannot push a variant out), each with its live sources (empty when no holder is up); the first variant also at the top',
  description:
    'Answers every content some peer has ever offered under this hash, live or not; 404 only when none ever did.',
  security: openUnlessMembersOnly,
  middleware: [requireAuthForReads()] as const,
  request: { params: z.object({ sha256: Sha256 }) },
  responses: {
    200: json(FileVariants, 'The content’s variants'),
    400: invalidInput('The sha256 is not 64 lower-case hex characters'),
    401: readTokenRefused,
    404: refusal('No peer has ever offered content under this sha256 (not_found)'),
    503: storageDown,
  },
})

export const searchRoutes = createRouter()
  .openapi(search, async (c) => {
    const { q, sha256, limit, sources, since } = c.req.valid('query')
    const { now } = c.get('deps')
    const after = since === undefined ? undefined : decodeCursor(since)
    const found = sha256
      ? await c.get('search').byHash(sha256, now(), after)
      : await c.get('search').byName(q ?? '', now(), limit, sources, after)
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
    const holders = await liveSources(db, contents, at, SOURCES_PER_RESULT)
    const [first, ...rest] = contents.map((content) => {
      const live = holders.get(variantKey(content))
      return {
        ...content,
        sourceCount: live?.count ?? 0,
        sources: (live?.sample ?? []).map(({ username, url, key }) => ({ username, url, key })),
      }
    })
    if (!first) throw new ApiError(404, 'not_found', `No peer has ever offered content ${sha256}.`)
    return c.json({ ...first, variants: [first, ...rest] }, 200)
  })
