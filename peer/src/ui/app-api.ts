import { create } from '@bufbuild/protobuf'
import { Code, ConnectError } from '@connectrpc/connect'
import { contentLookup, directoryFailure } from '../daemon/content-lookup.ts'
import { contentType } from '../daemon/content-type.ts'
import type { ControlledDaemon } from '../daemon/control-service.ts'
import { browsePeer } from '../daemon/peer-browse.ts'
import { WishError } from '../daemon/wish-store.ts'
import { BrowseRequestSchema } from '../gen/peerdir/v1/control_pb.ts'
import { VERSION } from '../version.ts'
import { text } from './app-http.ts'
import type { DownloadBoard } from './download-board.ts'
import { fetchFolder } from './folder-fetch.ts'

type Input = Record<string, unknown>
export type Action = (input: Input) => Promise<unknown> | unknown

const SHA256 = /^[0-9a-f]{64}$/
const sha256Of = (input: Input) => {
  const sha256 = text(input.sha256, 'sha256').toLowerCase()
  if (!SHA256.test(sha256)) throw new ConnectError('sha256 must be 64 hex digits', Code.InvalidArgument)
  return sha256
}

/**
 * What the web app reads and changes: the same daemon parts the control service acts on (search,
 * browse, downloads, wishes, the session), with plain JSON in and out. Reads take the query string's
 * values; changes a JSON body (web-app.ts checks who asks).
 */
export function appActions(daemon: ControlledDaemon, board: DownloadBoard) {
  const { variantsOf } = contentLookup(daemon)

  const reads: Record<string, Action> = {
    status: () => ({
      username: daemon.session.username,
      state: daemon.session.state,
      lastError: daemon.session.lastError,
      directory: daemon.directory.baseUrl,
      publicUrl: daemon.publicUrl,
      relay: daemon.relay
        ? { url: daemon.relay.relayUrl, linked: daemon.relay.connected, error: daemon.relay.lastError }
        : undefined,
      encrypted: daemon.key !== '',
      version: VERSION,
      sharedDir: daemon.sharedDir,
    }),
    search: async (input) => {
      const query = text(input.q, 'q').trim()
      if (!query) return { results: [] }
      const { results } = await daemon.directory
        .search(query, 50, daemon.session.token)
        .catch(directoryFailure)
      return {
        results: results.map((r) => ({
          name: r.name,
          path: r.path ?? '',
          size: r.size,
          sha256: r.sha256,
          sourceCount: r.sourceCount,
          sources: r.sources.map((s) => s.username),
        })),
      }
    },
    browse: async (input) => {
      const request = create(BrowseRequestSchema, {
        username: text(input.user, 'user'),
        path: typeof input.path === 'string' ? input.path : '',
      })
      const listing = await browsePeer(daemon, request)
      return {
        username: listing.username,
        state: listing.state,
        path: listing.path,
        folders: listing.folders.map((f) => ({
          name: f.name,
          files: Number(f.files),
          bytes: Number(f.bytes),
        })),
        files: listing.files.map((f) => ({
          name: f.name,
          path: f.path,
          size: Number(f.size),
          sha256: f.sha256,
        })),
      }
    },
    downloads: () => ({ downloads: board.list() }),
    wishes: () => ({ wishes: daemon.wishes.all }),
    shared: () => ({
      files: daemon.index.files
        .map((f) => ({
          name: f.name,
          folder: f.folder,
          size: f.size,
          sha256: f.sha256,
          served: board.served(f.sha256),
        }))
        .sort((a, b) => `${a.folder}/${a.name}`.localeCompare(`${b.folder}/${b.name}`)),
    }),
  }

  const changes: Record<string, Action> = {
    // What this peer shares already is there: nothing to fetch (as `peer get` says).
    download: async (input) => {
      const sha256 = sha256Of(input)
      const local = daemon.index.get(sha256)
      if (local) return { name: local.name, path: local.path }
      const transfer = daemon.downloads.start(await variantsOf(sha256), daemon.sharedDir)
      return { name: transfer.variant.name }
    },
    'download-folder': (input) =>
      fetchFolder(daemon, text(input.user, 'user'), typeof input.path === 'string' ? input.path : ''),
    cancel: (input) => ({ cancelled: daemon.downloads.cancel(sha256Of(input)) }),
    // The gateway URL with its capability, as a path of this origin: the page's player reads it while
    // the content downloads (and starts the download if none runs).
    play: (input) => {
      const sha256 = sha256Of(input)
      const url = new URL(daemon.gatewayUrl(sha256))
      const name = typeof input.name === 'string' ? input.name : ''
      return { url: `${url.pathname}${url.search}`, type: contentType(name) }
    },
    'wish-add': async (input) => {
      try {
        return {
          wish: await daemon.wishes.add({ query: text(input.query, 'query'), get: input.get === true }),
        }
      } catch (err) {
        if (err instanceof WishError) throw new ConnectError(err.message, Code.InvalidArgument)
        throw err
      }
    },
    'wish-remove': (input) => {
      if (!daemon.wishes.remove(text(input.id, 'id'))) throw new ConnectError('no such wish', Code.NotFound)
      return {}
    },
    login: async () => ({ state: await daemon.session.login() }),
    logout: async () => ({ state: await daemon.session.logout() }),
  }
  return { reads, changes }
}
