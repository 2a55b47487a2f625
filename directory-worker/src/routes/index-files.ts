import { createRoute } from '@hono/zod-openapi'
import { ApiError } from '../errors.ts'
import { limitBody, MiB } from '../middleware/body-limit.ts'
import { indexWriteSlot } from '../middleware/index-write-slot.ts'
import { requireAuth, requirePeerSession } from '../middleware/require-auth.ts'
import { createRouter } from '../router.ts'
import { errors, IndexCount, IndexPatch, IndexReplace, json } from '../schemas.ts'
import { patchIndex, replaceIndex, TooManyFiles } from '../store/files.ts'

export const INDEX_BODY_LIMIT = 32 * MiB
const bearer = [{ bearerAuth: [] }]
const indexResponses = {
  200: json(IndexCount, 'How many distinct contents the peer now shares'),
  400: errors[400],
  401: errors[401],
  413: errors[413],
  429: {
    ...errors[429],
    description:
      'An index write for this account is already in progress (index_write_in_progress), or the directory takes no more index writes at once (too_many_index_writes); retry after Retry-After seconds',
    headers: {
      'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' as const } },
    },
  },
  503: errors[503],
}

const replace = createRoute({
  method: 'put',
  path: '/index',
  tags: ['index'],
  summary: "Replace the caller's whole index",
  security: bearer,
  // The slot is taken before the body is read, so a refused write never buffers its body.
  middleware: [
    limitBody(INDEX_BODY_LIMIT),
    requireAuth(),
    requirePeerSession(),
    indexWriteSlot(INDEX_BODY_LIMIT),
  ] as const,
  request: { body: { content: { 'application/json': { schema: IndexReplace } }, required: true } },
  responses: indexResponses,
})

const patch = createRoute({
  method: 'patch',
  path: '/index',
  tags: ['index'],
  summary: "Remove then add entries in the caller's index",
  security: bearer,
  // The slot is taken before the body is read, so a refused write never buffers its body.
  middleware: [
    limitBody(INDEX_BODY_LIMIT),
    requireAuth(),
    requirePeerSession(),
    indexWriteSlot(INDEX_BODY_LIMIT),
  ] as const,
  request: { body: { content: { 'application/json': { schema: IndexPatch } }, required: true } },
  responses: indexResponses,
})

const tooMany = (detail: string) => new ApiError(413, 'too_many_files', `Too many files: ${detail}.`)

export const indexFiles = createRouter()
  .openapi(replace, async (c) => {
    const { files } = c.req.valid('json')
    const { db, settings } = c.get('deps')
    const distinct = new Set(files.map((file) => file.sha256)).size
    if (distinct > settings.maxFilesPerPeer) {
      throw tooMany(`the index holds ${distinct} files; the limit is ${settings.maxFilesPerPeer}`)
    }
    return c.json({ files: await replaceIndex(db, c.get('auth').peerId, files) }, 200)
  })
  .openapi(patch, async (c) => {
    const body = c.req.valid('json')
    const { db, settings } = c.get('deps')
    try {
      return c.json(
        { files: await patchIndex(db, c.get('auth').peerId, body, settings.maxFilesPerPeer) },
        200,
      )
    } catch (err) {
      if (err instanceof TooManyFiles) throw tooMany(err.message)
      throw err
    }
  })
