import { stat } from 'node:fs/promises'
import { basename, dirname, isAbsolute } from 'node:path'
import { create } from '@bufbuild/protobuf'
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from '@connectrpc/connect'
import { hashFile } from '../content/manifest.ts'
import { type ScanResult, type ShareIndex, toEntry } from '../content/share-index.ts'
import { CHOICE_HEADER } from '../control-headers.ts'
import {
  AddWishResponseSchema,
  AppUrlResponseSchema,
  ContentUrlResponseSchema,
  ControlService,
  EventsResponseSchema,
  type GetRequest,
  GetResponseSchema,
  ListFilesResponseSchema,
  ListPeersResponseSchema,
  ListWishesResponseSchema,
  LoginResponseSchema,
  LogoutResponseSchema,
  PushResponseSchema,
  ReindexResponseSchema,
  RemoveWishResponseSchema,
  SearchResponseSchema,
  StatusResponseSchema,
} from '../gen/peerdir/v1/control_pb.ts'
import type { UploadsState } from '../serve/upload-slots.ts'
import { LocalWriteError, NoSourcesError } from '../transfer/download-errors.ts'
import type { CallCredentials } from '../transfer/peer-link.ts'
import type { Transfer } from '../transfer/transfer.ts'
import type { Progress } from '../transfer/transfer-events.ts'
import { VERSION } from '../version.ts'
import { withCallToken } from '../wire/call-token.ts'
import type { DirectoryClient, Result } from '../wire/directory-client.ts'
import { KeyMismatchError, PeerConnection } from '../wire/peer-connection.ts'
import { isRelayedUrl } from '../wire/relay-protocol.ts'
import { uploadFile } from '../wire/upload-client.ts'
import { TICKET_SECONDS } from './app-sessions.ts'
import { contentLookup, directoryFailure } from './content-lookup.ts'
import type { DaemonEvents } from './daemon-events.ts'
import { eventMessage, wishMessage } from './daemon-messages.ts'
import type { DirectorySession } from './directory-session.ts'
import type { Downloads } from './downloads.ts'
import { contentThere, folderFilePlace, savedAs } from './folder-file.ts'
import { browsePeer } from './peer-browse.ts'
import type { RelayLink } from './relay-link.ts'
import type { WishRunner } from './wish-runner.ts'
import { WishError } from './wish-store.ts'

/** What the control service acts on: the running daemon's parts. */
export type ControlledDaemon = {
  readonly sharedDir: string
  readonly publicUrl: string
  /** The fingerprint of the certificate it serves (`sha256/…`); empty with --plaintext. */
  readonly key: string
  readonly directory: DirectoryClient
  readonly session: DirectorySession
  /** The call token for each peer this daemon calls (push). */
  readonly callTokens: CallCredentials
  readonly index: ShareIndex
  readonly downloads: Downloads
  /** The relay link, with `--relay`. */
  readonly relay?: RelayLink
  /** Connections punched to this daemon through NAT that are open now (the sources punched to are in `downloads`). */
  punchedLinks: () => number
  /** What happens in the daemon, as `peer events` follows it. */
  readonly events: DaemonEvents
  /** The saved searches (`peer wish`). */
  readonly wishes: WishRunner
  rescan: () => Promise<ScanResult>
  /** Who is served uploads now and who waits for a slot. */
  uploads: () => UploadsState
  /** The gateway URL of a content, with the capability that lets it be fetched (`peer url`). */
  gatewayUrl: (sha256: string) => string
  /** A one-time URL of the web app (`peer ui`); undefined when the daemon serves none. */
  appUrl?: () => string
}

const toProgress = (
  result: Pick<Result, 'name' | 'sha256' | 'size'>,
  progress: Progress,
  extra: { finished?: boolean; path?: string; seconds?: number } = {},
) =>
  create(GetResponseSchema, {
    name: result.name,
    sha256: result.sha256,
    size: BigInt(result.size),
    doneBytes: BigInt(progress.doneBytes),
    resumedBytes: BigInt(progress.resumedBytes),
    activeSources: progress.activeSources,
    sources: progress.sources.map((s) => ({
      ...s,
      bytes: BigInt(s.bytes),
      relayed: isRelayedUrl(s.url),
      link: s.route ?? (isRelayedUrl(s.url) ? 'relayed' : 'direct'),
    })),
    ...extra,
  })

/** A progress message for each `progress` event of `transfer`, until it ends (or the caller goes away). */
async function* progressOf(transfer: Transfer, signal: AbortSignal) {
  for await (const event of transfer.events(signal)) {
    if (event.type === 'progress') yield toProgress(event.progress.variant, event.progress)
  }
}

const uploadsMessage = (uploads: UploadsState) => ({
  ...uploads,
  active: uploads.active.map((a) => ({ ...a, bytes: BigInt(a.bytes) })),
})

export function controlServiceRoutes(daemon: ControlledDaemon) {
  const { resolve } = contentLookup(daemon)

  async function* get(req: GetRequest, ctx: HandlerContext) {
    if (req.outDir && !isAbsolute(req.outDir)) {
      throw new ConnectError('out_dir must be an absolute path', Code.InvalidArgument)
    }
    // A folder get's file, placed (or refused) before anything else happens.
    const placed = req.name
      ? folderFilePlace(req.outDir || daemon.sharedDir, req.folder, req.name)
      : undefined
    let wanted = await resolve(req.target.trim())
    // Before the first message, so the CLI can say which of several same-named contents it fetches.
    if (wanted.choice) ctx.responseHeader.set(CHOICE_HEADER, encodeURIComponent(wanted.choice))
    const there = placed ? await contentThere(placed, wanted, daemon.index) : undefined
    if (placed && there !== undefined) {
      const done = { doneBytes: there, resumedBytes: there, activeSources: 0, sources: [] }
      yield toProgress({ name: req.name, sha256: wanted.sha256, size: there }, done, {
        finished: true,
        path: placed,
      })
      return
    }
    if (placed) wanted = savedAs(wanted, req.name)
    const local = daemon.index.get(wanted.sha256)
    if (local && !req.outDir && !placed) {
      const shared = { name: local.name, sha256: local.sha256, size: local.size }
      yield toProgress(
        shared,
        { doneBytes: local.size, resumedBytes: local.size, activeSources: 0, sources: [] },
        { finished: true, path: local.path },
      )
      return
    }
    const outDir = placed ? dirname(placed) : req.outDir || daemon.sharedDir
    let transfer = daemon.downloads.start(wanted, outDir, { keep: !req.noKeep })
    // While this call lasts, a transfer nobody keeps (`peer cat --no-keep`) goes on.
    let release = daemon.downloads.hold(transfer)
    try {
      yield* progressOf(transfer, ctx.signal)
      if (ctx.signal.aborted) return // the CLI went away: let go at once
      if (!req.noKeep && (await transfer.done).path === '') {
        // Joined a `--no-keep` transfer just as it finished and discarded its file: fetch it again.
        release()
        transfer = daemon.downloads.start(wanted, outDir)
        release = daemon.downloads.hold(transfer)
        yield* progressOf(transfer, ctx.signal)
      }
      // `peer cat --no-keep` reads through a second call: its file is discarded once nobody holds it.
      if (req.noKeep) await transfer.readers.readerAttached(10_000)
      const done = await transfer.done
      yield toProgress(done.variant, done, { finished: true, path: done.path, seconds: done.seconds })
    } catch (err) {
      if (err instanceof NoSourcesError) throw new ConnectError(err.message, Code.NotFound)
      if (err instanceof ConnectError) throw err
      if (err instanceof LocalWriteError) {
        throw new ConnectError(
          `${err.message}; run the same \`peer get\` again once the disk can take the file (verified chunks are kept)`,
          Code.Internal,
        )
      }
      throw new ConnectError(err instanceof Error ? err.message : String(err), Code.Internal)
    } finally {
      release()
    }
  }

  /**
   * What `peer url` names: a hash as it is, or a name as `peer get` finds it, though a single content
   * shared here under that exact name needs no directory.
   */
  async function contentUrl(req: { target: string }) {
    const target = req.target.trim()
    if (!target) throw new ConnectError('name a content: a sha256 or a file name', Code.InvalidArgument)
    const sha256 = /^[0-9a-f]{64}$/i.test(target) ? target.toLowerCase() : undefined
    const named = daemon.index.files.filter((f) => f.name.toLowerCase() === target.toLowerCase())
    const local = sha256
      ? daemon.index.get(sha256)
      : new Set(named.map((f) => f.sha256)).size === 1
        ? named[0]
        : undefined
    const found = local ?? (await resolve(target)).variants[0]
    if (!found) throw new ConnectError(`nothing matches "${target}"`, Code.NotFound)
    return create(ContentUrlResponseSchema, {
      url: daemon.gatewayUrl(found.sha256),
      name: found.name,
      sha256: found.sha256,
      size: BigInt(found.size),
    })
  }

  async function push(req: { path: string; toUsername: string }) {
    if (!isAbsolute(req.path)) throw new ConnectError('path must be absolute', Code.InvalidArgument)
    let size: number
    try {
      const info = await stat(req.path)
      if (!info.isFile()) throw new Error('not a file')
      size = info.size
    } catch {
      // Not bad usage: the command was right, the file is not there (exit 1, not 2).
      throw new ConnectError(`${req.path} is not a readable file`, Code.FailedPrecondition)
    }
    const { peers } = await daemon.directory.peers('up', daemon.session.token).catch(directoryFailure)
    const target = peers.find((p) => p.username.toLowerCase() === req.toUsername.toLowerCase())
    if (!target) throw new ConnectError(`${req.toUsername} is not up on the network`, Code.NotFound)
    const { sha256 } = await hashFile(req.path)
    const header = { name: basename(req.path), size, sha256 }
    // Pinned to the key the directory lists: a mismatch fails before the token or a byte is sent.
    const connection = new PeerConnection(target)
    const answer = await withCallToken(
      daemon.callTokens,
      target.username,
      (headers) => uploadFile(connection, req.path, header, headers),
      {
        token: () => daemon.callTokens.token(target.username).catch(directoryFailure),
        failed: (err) => {
          const why = connection.explain(err)
          throw new ConnectError(
            `${target.username} refused the upload: ${why instanceof KeyMismatchError ? why.message : ConnectError.from(err).rawMessage}`,
            Code.FailedPrecondition,
          )
        },
      },
    )
    return create(PushResponseSchema, { name: answer.name, size: answer.size, sha256: answer.sha256 })
  }

  return (router: ConnectRouter) =>
    router.service(ControlService, {
      status: () =>
        create(StatusResponseSchema, {
          username: daemon.session.username,
          state: daemon.session.state,
          directoryUrl: daemon.directory.baseUrl,
          publicUrl: daemon.publicUrl,
          sharedDir: daemon.sharedDir,
          files: daemon.index.files.length,
          bytes: BigInt(daemon.index.files.reduce((sum, f) => sum + f.size, 0)),
          lastError: daemon.session.lastError,
          activeDownloads: daemon.downloads.active,
          version: VERSION,
          relayUrl: daemon.relay?.relayUrl ?? '',
          relayRegistered: daemon.relay?.connected ?? false,
          relayError: daemon.relay?.lastError ?? '',
          punchedServing: daemon.punchedLinks(),
          punchedFetching: daemon.downloads.punchedSources,
          uploads: uploadsMessage(daemon.uploads()),
          key: daemon.key,
        }),
      login: async () => {
        const state = await daemon.session.login()
        if (state !== 'up') {
          throw new ConnectError(
            `could not log in: ${daemon.session.lastError || 'the directory did not answer'}`,
            state === 'unreachable' ? Code.Unavailable : Code.Unauthenticated,
          )
        }
        return create(LoginResponseSchema, { state })
      },
      logout: async () => create(LogoutResponseSchema, { state: await daemon.session.logout() }),
      reindex: async () => {
        const scan = await daemon.rescan()
        return create(ReindexResponseSchema, {
          files: daemon.index.files.length,
          added: scan.added.length,
          removed: scan.removed.length,
          hashed: scan.hashed,
          moved: scan.moved.length,
        })
      },
      listFiles: () =>
        create(ListFilesResponseSchema, {
          files: daemon.index.files
            .map((f) => ({ ...toEntry(f), size: BigInt(f.size), path: f.path, folder: f.folder }))
            .sort((a, b) => a.name.localeCompare(b.name)),
        }),
      search: async (req) => {
        const query = req.query.trim()
        if (!query) throw new ConnectError('give some text to search for', Code.InvalidArgument)
        const { results } = await daemon.directory
          .search(query, Math.min(500, req.limit || 50), daemon.session.token)
          .catch(directoryFailure)
        return create(SearchResponseSchema, {
          results: results.map((r) => ({
            ...r,
            size: BigInt(r.size),
            path: r.path ?? '',
            sources: r.sources.map((s) => ({ ...s, key: s.key ?? '' })),
          })),
        })
      },
      listPeers: async (req) => {
        const { peers } = await daemon.directory
          .peers(req.state || undefined, daemon.session.token)
          .catch(directoryFailure)
        return create(ListPeersResponseSchema, {
          peers: peers.map((p) => ({ ...p, key: p.key ?? '', relayed: isRelayedUrl(p.url) })),
        })
      },
      browse: (req) => browsePeer(daemon, req),
      get,
      push,
      contentUrl,
      events: async function* (_req, ctx) {
        for await (const event of daemon.events.follow(ctx.signal)) {
          yield create(EventsResponseSchema, eventMessage(event))
        }
      },
      addWish: async (req) => {
        try {
          const wish = await daemon.wishes.add({
            query: req.query,
            get: req.get,
            minSize: req.minSize ? Number(req.minSize) : undefined,
            maxSize: req.maxSize ? Number(req.maxSize) : undefined,
          })
          return create(AddWishResponseSchema, { wish: wishMessage(wish) })
        } catch (err) {
          if (err instanceof WishError) throw new ConnectError(err.message, Code.InvalidArgument)
          throw err
        }
      },
      appUrl: () => {
        if (!daemon.appUrl) throw new ConnectError('this daemon serves no web app', Code.FailedPrecondition)
        return create(AppUrlResponseSchema, { url: daemon.appUrl(), expiresInSeconds: TICKET_SECONDS })
      },
      listWishes: () => create(ListWishesResponseSchema, { wishes: daemon.wishes.all.map(wishMessage) }),
      removeWish: (req) => {
        if (!daemon.wishes.remove(req.id)) throw new ConnectError(`no wish ${req.id}`, Code.NotFound)
        return create(RemoveWishResponseSchema, {})
      },
    })
}
