import { createRoute, z } from '@hono/zod-openapi'
import { FolderPath, PeerFiles, Username } from '../../../contract/schemas.ts'
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
import { type BrowseCursor, browseFolder } from '../store/browse.ts'
import { findPeer } from '../store/peers.ts'

/** The most files one page lists (and its default). */
export const MAX_BROWSE_PAGE = 1000

/** A cursor is where the last page ended, opaque to clients: base64url of its JSON (web APIs: Workers too). */
function encodeCursor(cursor: BrowseCursor): string {
  const bytes = new TextEncoder().encode(JSON.stringify(cursor))
  return btoa(String.fromCharCode(...bytes))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '')
}

const CursorShape = z.tuple([z.string(), z.string(), z.number().int(), z.number().int()])
function decodeCursor(text: string): BrowseCursor | undefined {
  try {
    const binary = atob(text.replaceAll('-', '+').replaceAll('_', '/'))
    const json = new TextDecoder('utf-8', { fatal: true }).decode(
      Uint8Array.from(binary, (ch) => ch.charCodeAt(0)),
    )
    const parsed = CursorShape.safeParse(JSON.parse(json))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

const browse = createRoute({
  method: 'get',
  path: '/peers/{username}/files',
  operationId: 'browsePeer',
  tags: ['network'],
  summary:
    'One folder of what a peer shares: the folders right below it (files and bytes in each) and its files',
  description: `path "" (the default) is the top. recursive=true lists every file at and below the folder instead, by path then name, and no folders. At most limit files a page (1-${MAX_BROWSE_PAGE}); a cursor in the answer means more follow: pass it back for the next page (folders come on the first page only).`,
  security: openUnlessMembersOnly,
  middleware: [requireAuthForReads()] as const,
  request: {
    params: z.object({ username: Username }),
    query: z.object({
      path: FolderPath.default(''),
      recursive: z
        .enum(['true', 'false'])
        .default('false')
        .transform((value) => value === 'true'),
      limit: z.coerce.number().int().min(1).max(MAX_BROWSE_PAGE).default(MAX_BROWSE_PAGE),
      cursor: z.string().min(1).max(4096).optional().openapi({ description: 'From the previous page' }),
    }),
  },
  responses: {
    200: json(PeerFiles, 'The folder’s level (or a page of its files)'),
    400: invalidInput(
      `A path that is not a folder path (segments as file names, / between, at most 32 and 1,024 bytes), recursive not true or false, limit not 1-${MAX_BROWSE_PAGE}, or a cursor not from this call`,
    ),
    401: readTokenRefused,
    404: refusal('No such user (unknown_peer), or nothing shared at or below that folder (unknown_folder)'),
    503: storageDown,
  },
})

export const browseRoutes = createRouter().openapi(browse, async (c) => {
  const { username } = c.req.valid('param')
  const { path, recursive, limit, cursor } = c.req.valid('query')
  const after = cursor === undefined ? undefined : decodeCursor(cursor)
  if (cursor !== undefined && !after) {
    throw new ApiError(400, 'invalid_request', 'cursor: must be the cursor of a previous page of this call.')
  }
  const { db, now } = c.get('deps')
  const peer = await findPeer(db, username)
  if (!peer) throw new ApiError(404, 'unknown_peer', `No user is called ${username}.`)
  const page = await browseFolder(db, peer.id, path, { recursive, limit, after })
  if (!page.found) {
    throw new ApiError(404, 'unknown_folder', `${peer.username} shares nothing in a folder "${path}".`)
  }
  return c.json(
    {
      username: peer.username,
      state: peer.leaseExpiresAt > now() ? ('up' as const) : ('down' as const),
      key: peer.key,
      path,
      folders: page.folders,
      files: page.files,
      ...(page.next ? { cursor: encodeCursor(page.next) } : {}),
    },
    200,
  )
})
