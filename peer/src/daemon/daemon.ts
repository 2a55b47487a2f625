import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { HashCache } from '../content/hash-cache.ts'
import { type ScanResult, type SharedFile, ShareIndex, toEntry } from '../content/share-index.ts'
import { downloadFastPath } from '../serve/download-fast-path.ts'
import { type PeerServiceOptions, peerServiceRoutes } from '../serve/peer-service.ts'
import { RateLimiter } from '../serve/rate-limit.ts'
import { UploadSlots } from '../serve/upload-slots.ts'
import { controlAuthInterceptor, peerAuth, peerAuthInterceptor } from '../wire/auth.ts'
import { DirectoryClient } from '../wire/directory-client.ts'
import { ListeningPort, type TlsFiles } from '../wire/listening-port.ts'
import { relayedUrl } from '../wire/relay-protocol.ts'
import { listenForControl, type PlainHttp, type RpcServer, serveRpc } from '../wire/transport.ts'
import { AppSessions } from './app-sessions.ts'
import { CallTokens } from './call-tokens.ts'
import { contentGateway, gatewayOnControl, gatewayOnNetwork } from './content-gateway.ts'
import { type ControlledDaemon, controlServiceRoutes } from './control-service.ts'
import { DaemonEvents } from './daemon-events.ts'
import { DirectorySession } from './directory-session.ts'
import { reportTransfer } from './download-events.ts'
import { Downloads } from './downloads.ts'
import { GatewayCapabilities } from './gateway-capability.ts'
import { CompletionHook } from './on-complete.ts'
import { identityFromFiles, ownIdentity } from './peer-key.ts'
import { RelayLink } from './relay-link.ts'
import { controlSocketPath, stateDirFor, writeControlInfo } from './state-dir.ts'
import { UploadTally } from './upload-tally.ts'
import { watchFolder } from './watcher.ts'
import { WishRunner } from './wish-runner.ts'
import { WishStore } from './wish-store.ts'

export type DaemonOptions = {
  port: number
  host: string
  username: string
  password: string
  sharedDir: string
  directoryUrl: string
  publicUrl?: string
  /** A relay to register with (`--relay`): callers reach this daemon through it. */
  relayUrl?: string
  open: boolean
  acceptUploads: boolean
  maxUploadBytes: number
  /** The inbox's budget in bytes (uploads in flight count). */
  inboxQuotaBytes: number
  /** Bytes per second served to all peers together; undefined: unlimited. */
  maxUploadRate?: number
  /** Accounts served Download calls at once (`--upload-slots`), and how many may wait (`--max-queue`). */
  uploadSlots: number
  maxQueue: number
  /** Usernames that skip the upload queue (`--friends`). */
  friends: string[]
  /** `--tls-cert/--tls-key`: serve this (CA-issued) certificate instead of the daemon's own. */
  tls?: TlsFiles
  /** `--plaintext`: no TLS at all (a trusted network); the daemon publishes an http:// URL and no key. */
  plaintext?: boolean
  stateRoot?: string
  /** `--on-complete`: the user's command, run after each verified download (on-complete.ts). */
  onComplete?: string
  /** How often wishes are searched again (default about a minute). */
  wishIntervalMs?: number
  /**
   * The web app (`peer ui`), served on the port beside the gateway to the same loopback callers; made
   * by its own layer (peer/src/ui) from the daemon's parts and who may use it.
   */
  webApp?: (daemon: ControlledDaemon, app: { sessions: AppSessions; port: number }) => PlainHttp
  /** How long a source may send nothing before it is dropped (default 20 s). */
  stallMs?: number
  log: (line: string) => void
}

export type Daemon = ControlledDaemon & {
  readonly port: number
  stop: () => Promise<void>
}

/** The host of a URL that reaches `host` from this machine: loopback for a wildcard, IPv6 in brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}

/** Where the gateway is reached on this machine: a loopback name it answers (content-gateway.ts). */
function gatewayHost(host: string): string {
  if (host === '::' || host === '::1') return '[::1]'
  return host === 'localhost' ? host : '127.0.0.1'
}

/** Starts a peer: hashes and serves the folder, keeps it published in the directory, obeys the CLI. */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { log } = options
  const sharedDir = resolve(options.sharedDir)
  mkdirSync(sharedDir, { recursive: true })
  // Asked for any port (0), it binds first: its state folder is named by the port it got (state-dir.ts).
  // Nobody knows that port before the ready line below, so no caller reaches it before it serves.
  const listening = new ListeningPort()
  if (options.port === 0) await listening.listen(0, options.host)
  const port = listening.port || options.port
  const stateDir = stateDirFor(port, options.stateRoot)
  mkdirSync(stateDir, { recursive: true, mode: 0o700 })
  const index = new ShareIndex(sharedDir, new HashCache(join(stateDir, 'hash-cache.json')))
  const started = performance.now()
  const first = await index.scan()
  log(
    `shared folder ${sharedDir}: ${index.files.length} files (${first.hashed} hashed, the rest from cache) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  )

  const events = new DaemonEvents()
  if (options.onComplete) events.subscribe(new CompletionHook(options.onComplete, log).listener)
  const directory = new DirectoryClient(options.directoryUrl)
  const identity = options.plaintext
    ? undefined
    : options.tls
      ? identityFromFiles(options.tls)
      : ownIdentity(stateDir, options.username)
  const scheme = identity ? 'https' : 'http'
  const relayed = options.relayUrl !== undefined && options.publicUrl === undefined
  const publicUrl =
    options.publicUrl ??
    (options.relayUrl
      ? relayedUrl(options.relayUrl, options.username)
      : `${scheme}://${urlHost(options.host)}:${port}`)
  // The key goes with an https:// URL that reaches our own TLS, or with a relayed one: the relay's
  // tunnel carries our TLS end to end, whatever the relay's own scheme.
  const key = identity && (relayed || publicUrl.startsWith('https:')) ? identity.fingerprint : undefined
  const session = new DirectorySession({
    client: directory,
    username: options.username,
    password: options.password,
    publicUrl,
    key,
    entries: () => index.files.map(toEntry),
    // A relayed peer is listed only once its link is registered (relay-link.ts logs it in for that).
    held: options.relayUrl !== undefined && options.publicUrl === undefined,
    onLoginWanted: () => relay?.retryNow(),
    // Its lastError says why only once the turn that changed the state ends.
    onState: (state) =>
      queueMicrotask(() => events.emit({ type: 'session', state, relay: '', reason: session.lastError })),
    log,
  })

  // A moved file is removed and added again at its new place: a path change, its hash kept.
  const publish = (scan: ScanResult) => {
    if (scan.added.length || scan.removed.length || scan.moved.length) {
      session.publishChanges(
        [...scan.added, ...scan.moved].map(toEntry),
        [...scan.removed, ...scan.moved].map((f) => f.sha256),
      )
    }
  }
  const rescan = async () => {
    const scan = await index.scan()
    if (scan.added.length || scan.removed.length || scan.moved.length)
      log(
        `shared folder changed: ${scan.added.length} new, ${scan.removed.length} gone, ${scan.moved.length} moved (${scan.hashed} hashed)`,
      )
    publish(scan)
    return scan
  }
  const share = (file: SharedFile) => publish(index.addVerified(file))
  const callTokens = new CallTokens(directory, () => session.tokenWhenReady())
  const downloads = new Downloads({
    directory,
    session,
    credentials: callTokens,
    onFinished: share,
    onStarted: (transfer) => void reportTransfer(transfer, events),
    stallMs: options.stallMs,
  })
  const wishes = new WishRunner({
    store: new WishStore(stateDir),
    search: (query, limit, since) => directory.search(query, limit, session.token, since),
    variants: async (sha256) => {
      const found = await directory.file(sha256, session.token)
      return found?.variants.length ? { sha256, variants: found.variants } : undefined
    },
    fetch: (wanted) => downloads.start(wanted, sharedDir),
    index,
    events,
    log,
    intervalMs: options.wishIntervalMs,
  })
  const uploads = new UploadTally(events)

  const relay =
    options.relayUrl === undefined
      ? undefined
      : new RelayLink({
          relayUrl: options.relayUrl,
          username: options.username,
          token: async () => {
            const sessionToken = await session.release()
            if (!sessionToken) return undefined
            return (await directory.relayToken(sessionToken, new URL(options.relayUrl as string).origin))
              .token
          },
          lost: async (why) => {
            if (options.publicUrl === undefined) await session.hold(why)
          },
          // Called once the link is up, by then long after the server below exists.
          serve: (socket) => server.serveReverse(socket),
          onLink: (linked) =>
            events.emit({ type: 'session', state: '', relay: linked ? 'linked' : 'lost', reason: '' }),
          log,
        })

  const slots = new UploadSlots({
    slots: options.uploadSlots,
    maxQueue: options.maxQueue,
    friends: options.friends,
  })

  const capabilities = GatewayCapabilities.inStateDir(stateDir)
  // Plain HTTP, for this machine's players and browsers: the port answers it to loopback callers only.
  const gatewayOrigin = `http://${gatewayHost(options.host)}:${port}`
  const appSessions = new AppSessions()
  const controlled: ControlledDaemon = {
    sharedDir,
    publicUrl,
    key: identity?.fingerprint ?? '',
    directory,
    session,
    callTokens,
    index,
    downloads,
    relay,
    // Called once the server below exists.
    punchedLinks: () => server.punchedLinks(),
    events,
    wishes,
    rescan,
    uploads: () => slots.state(),
    gatewayUrl: (sha256) => `${gatewayOrigin}/content/${sha256}?cap=${capabilities.for(sha256)}`,
    appUrl: options.webApp && (() => `${gatewayOrigin}/app/open?ticket=${appSessions.ticket()}`),
  }

  const verifyPeer = peerAuth({
    directory,
    open: options.open,
    username: options.username,
    key,
    sessionToken: () => session.token,
  })
  const service: PeerServiceOptions = {
    index,
    username: () => options.username,
    acceptUploads: options.acceptUploads,
    inboxDir: join(sharedDir, 'inbox'),
    maxUploadBytes: options.maxUploadBytes,
    inboxQuotaBytes: options.inboxQuotaBytes,
    limiter: options.maxUploadRate ? new RateLimiter(options.maxUploadRate) : undefined,
    slots,
    onStale: () => void rescan(),
    onUploaded: share,
    onServed: uploads.served,
  }
  const gateway = contentGateway(controlled, capabilities)
  const onNetwork = gatewayOnNetwork(gateway, port)
  const webApp = options.webApp?.(controlled, { sessions: appSessions, port })
  const server: RpcServer = serveRpc(listening, {
    tls: identity,
    plainHttp: webApp ? (req, res) => onNetwork(req, res) || webApp(req, res) : onNetwork,
    interceptors: [peerAuthInterceptor(verifyPeer)],
    fastPath: downloadFastPath({ service, verifyPeer }),
    routes: peerServiceRoutes(service),
  })
  if (options.port !== 0) await listening.listen(options.port, options.host)
  // The CLI finds the socket and the token in the state folder once both are ready.
  const token = randomBytes(32).toString('base64url')
  const socket = controlSocketPath(stateDir)
  const control = await listenForControl({
    socketPath: socket,
    plainHttp: gatewayOnControl(gateway, token),
    routes: controlServiceRoutes(controlled),
    interceptors: [controlAuthInterceptor(token)],
  })
  writeControlInfo(stateDir, { port, pid: process.pid, socket, token })
  // The ready line: peers are served, and the CLI finds this daemon by the port it names.
  log(
    identity ? `TLS key ${identity.fingerprint}` : 'serving peers in plaintext (--plaintext): no TLS, no key',
  )
  log(`serving peers on ${publicUrl} (listening on ${options.host}:${port})`)
  const watcher = watchFolder(sharedDir, () => void rescan())
  session.start()
  relay?.start()
  wishes.start()

  return {
    ...controlled,
    port,
    stop: async () => {
      watcher.close()
      await wishes.stop()
      await relay?.stop()
      await downloads.stop()
      await session.stop()
      control.close()
      await server.stop()
      uploads.flush()
    },
  }
}
