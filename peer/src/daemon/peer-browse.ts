import { create } from '@bufbuild/protobuf'
import { Code, ConnectError } from '@connectrpc/connect'
import { pathProblem } from '../content/safe-path.ts'
import { type BrowseRequest, BrowseResponseSchema } from '../gen/peerdir/v1/control_pb.ts'
import { type DirectoryClient, DirectoryError, type PeerFiles } from '../wire/directory-client.ts'
import { directoryFailure } from './content-lookup.ts'
import type { DirectorySession } from './directory-session.ts'

const USERNAME = /^[A-Za-z0-9._-]{1,64}$/
/** The most files one page may bring: the directory's default page (`/openapi.json`), and a bound on what a directory sends. */
const MAX_PAGE = 1000

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
const isText = (s: unknown): s is string => typeof s === 'string'

/**
 * The answer's shape, checked before anything of it is passed on: a directory that sends something else
 * is refused as a whole. Names and paths stay as sent; they are checked where a file would be written
 * (safe-path.ts), so a listing shows what the directory claims and a download refuses what is hostile.
 */
function wellFormed(answer: PeerFiles): boolean {
  return (
    typeof answer === 'object' &&
    answer !== null &&
    isText(answer.username) &&
    isText(answer.path) &&
    (answer.state === 'up' || answer.state === 'down') &&
    Array.isArray(answer.folders) &&
    Array.isArray(answer.files) &&
    answer.folders.length + answer.files.length <= 2 * MAX_PAGE &&
    (answer.cursor === undefined || answer.cursor === null || isText(answer.cursor)) &&
    answer.folders.every((f) => isText(f?.name) && isCount(f.files) && isCount(f.bytes)) &&
    answer.files.every(
      (f) =>
        isText(f?.name) &&
        (f.path === undefined || isText(f.path)) &&
        isCount(f.size) &&
        isText(f.sha256) &&
        /^[0-9a-f]{64}$/.test(f.sha256) &&
        isCount(f.chunkSize) &&
        f.chunkSize <= 0xffff_ffff &&
        isText(f.manifest),
    )
  )
}

/** `peer browse`: one level of a user's share, or a page of every file under a folder, from the directory. */
export async function browsePeer(
  daemon: { directory: DirectoryClient; session: DirectorySession },
  req: BrowseRequest,
) {
  if (!USERNAME.test(req.username))
    throw new ConnectError(
      `"${req.username}" is not a username (1-64 of A-Z a-z 0-9 . _ -)`,
      Code.InvalidArgument,
    )
  const path = req.path.replace(/\/+$/, '')
  const problem = pathProblem(path)
  if (problem) throw new ConnectError(`the folder "${path}" ${problem}`, Code.InvalidArgument)
  const limit = Math.min(MAX_PAGE, req.limit || MAX_PAGE)
  const options = { path, recursive: req.recursive, limit, cursor: req.cursor || undefined }
  const answer = await daemon.directory
    .browse(req.username, options, daemon.session.token)
    .catch((err: unknown) => {
      if (err instanceof DirectoryError && err.status === 404) {
        // unknown_peer, unknown_folder; any other 404 means the route itself is missing.
        if (err.code !== 'not_found') throw new ConnectError(err.message, Code.NotFound)
        throw new ConnectError(
          `the directory at ${daemon.directory.baseUrl} does not list folders (it is older than browsing)`,
          Code.FailedPrecondition,
        )
      }
      return directoryFailure(err)
    })
  if (!wellFormed(answer))
    throw new ConnectError(`the directory sent a malformed listing of ${req.username}`, Code.DataLoss)
  return create(BrowseResponseSchema, {
    username: answer.username,
    state: answer.state,
    path: answer.path,
    folders: answer.folders.map((f) => ({ name: f.name, files: BigInt(f.files), bytes: BigInt(f.bytes) })),
    files: answer.files.map((f) => ({
      name: f.name,
      path: f.path ?? '',
      size: BigInt(f.size),
      sha256: f.sha256,
      chunkSize: f.chunkSize,
      manifest: f.manifest,
    })),
    cursor: answer.cursor ?? '',
  })
}
