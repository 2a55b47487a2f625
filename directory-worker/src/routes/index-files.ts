import { createRoute } from '@hono/zod-openapi'
import { IndexCount, IndexPatch, IndexReplace } from '../../../contract/schemas.ts'
import { ApiError } from '../errors.ts'
import { limitBody, MiB } from '../middleware/body-limit.ts'
import { indexWriteSlot } from '../middleware/index-write-slot.ts'
import { requireAuth, requirePeerSession } from '../middleware/require-auth.ts'
import {
  bearer,
  invalidInput,
  json,
  notJson,
  refusal,
  sessionTokenRefused,
  storageDown,
  throttled,
  viewerRefused,
} from '../responses.ts'
import { createRouter } from '../router.ts'
import { TooManyFiles } from '../store/files.ts'
import { applyPatch } from '../store/index-patch.ts'
import { replaceIndex } from '../store/index-replace.ts'

export const INDEX_BODY_LIMIT = 32 * MiB
const indexResponses = {
  200: json(IndexCount, 'How many distinct contents the peer now shares'),
  400: invalidInput('The body is not a valid index write, or an entry is not a valid FileEntry'),
  401: sessionTokenRefused,
  403: viewerRefused,
  413: refusal(
    'The body is larger than 32 MiB (payload_too_large), or the index would hold more distinct contents than MAX_FILES_PER_PEER (too_many_files)',
  ),
  415: notJson,
  429: throttled(
    'An index write for this account is already in progress (index_write_in_progress), or the directory takes no more index writes at once (too_many_index_writes); retry after Retry-After seconds',
  ),
  503: storageDown,
}

const replace = createRoute({
  method: 'put',
  path: '/index',
  operationId: 'replaceIndex',
  tags: ['index'],
  summary: "Replace the caller's whole index",
  description: 'The files listed become everything the peer offers; an empty list withdraws everything.',
  security: bearer,
  // The credentials and the slot come before the body is read: a stranger's or a refused write never
  // has its body buffered (a body without Content-Length is read whole by the limit, within the slot).
  middleware: [
    requireAuth(),
    requirePeerSession(),
    indexWriteSlot(INDEX_BODY_LIMIT),
    limitBody(INDEX_BODY_LIMIT),
  ] as const,
  request: { body: { content: { 'application/json': { schema: IndexReplace } }, required: true } },
  responses: indexResponses,
})

const patch = createRoute({
  method: 'patch',
  path: '/index',
  operationId: 'patchIndex',
  tags: ['index'],
  summary: "Remove then add entries in the caller's index",
  description:
    'Removes the listed sha256s, then adds the entries, in one step: a sha256 in both ends up added. Removing what is not there is not an error.',
  security: bearer,
  // The credentials and the slot come before the body is read: a stranger's or a refused write never
  // has its body buffered (a body without Content-Length is read whole by the limit, within the slot).
  middleware: [
    requireAuth(),
    requirePeerSession(),
    indexWriteSlot(INDEX_BODY_LIMIT),
    limitBody(INDEX_BODY_LIMIT),
  ] as const,
  request: { body: { content: { 'application/json': { schema: IndexPatch } }, required: true } },
  responses: indexResponses,
})

const tooMany = (detail: string) => new ApiError(413, 'too_many_files', `Too many files: ${detail}.`)

export const indexFiles = createRouter()
  .openapi(replace, async (c) => {
    const { files } = c.req.valid('json')
    const { db, settings, now } = c.get('deps')
    const distinct = new Set(files.map((file) => file.sha256)).size
    if (distinct > settings.maxFilesPerPeer) {
      throw tooMany(`the index holds ${distinct} files; the limit is ${settings.maxFilesPerPeer}`)
    }
    return c.json({ files: await replaceIndex(db, c.get('auth').peerId, files, now()) }, 200)
  })
  .openapi(patch, async (c) => {
    const body = c.req.valid('json')
    const { db, settings, now } = c.get('deps')
    try {
      return c.json(
        { files: await applyPatch(db, c.get('auth').peerId, body, settings.maxFilesPerPeer, now()) },
        200,
      )
    } catch (err) {
      if (err instanceof TooManyFiles) throw tooMany(err.message)
      throw err
    }
  })
