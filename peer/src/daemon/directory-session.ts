import type { FileEntry } from '../content/share-index.ts'
import { type DirectoryClient, DirectoryError } from '../wire/directory-client.ts'
import { Alarm } from './alarm.ts'
import { PresenceHolder } from './presence-holder.ts'

export type SessionState = 'up' | 'down' | 'unreachable'

type Options = {
  client: DirectoryClient
  username: string
  password: string
  publicUrl: string
  /** The key its TLS serves (listed with publicUrl; callers pin it); undefined: it serves plaintext. */
  key?: string
  /** The whole index, as published after every (re)login. */
  entries: () => FileEntry[]
  /**
   * Down until release(): a peer reached only through a relay is listed only while its link is up
   * (relay-link.ts logs it in, registers, and takes it down again with hold() when the link is lost).
   */
  held?: boolean
  /** `peer login` was asked for: whoever holds the session should try now. */
  onLoginWanted?: () => void
  /** The session went up, down or unreachable (`lastError` says why once the current turn ends). */
  onState?: (state: SessionState) => void
  log: (line: string) => void
}

const MAX_BACKOFF_MS = 30_000

/**
 * Keeps this peer present in the directory: logs in, publishes the whole index, holds the presence
 * socket where the directory offers one (so this process going away takes the peer down at once) and
 * else heartbeats about every third of the lease (with jitter), and sends folder changes as deltas.
 * While the socket is held, heartbeats only renew the token; when it ends, heartbeats take over at
 * once and the socket is tried again (at once after a drop, after PRESENCE_RETRY_MS after a refusal). When the directory goes away it
 * retries with backoff; when it refuses the token (restarted, token expired) it logs in again and
 * republishes. Never throws out of its loop.
 */
export class DirectorySession {
  readonly #options: Options
  #token: string | undefined
  /** While held: a viewer session (logged in without url), for reading and call tokens; the peer is down. */
  #viewer: { token: string; renewAt: number } | undefined
  #loggedInOnce = false
  #wanted = true
  #held: boolean
  #stopped = false
  #current: SessionState = 'down'
  get #state(): SessionState {
    return this.#current
  }
  set #state(next: SessionState) {
    if (next === this.#current) return
    this.#current = next
    this.#options.onState?.(next)
  }
  #lastError = ''
  #needsFullPublish = true
  #pendingAdd = new Map<string, FileEntry>()
  #pendingRemove = new Set<string>()
  #nextBeatAt = 0
  #leaseSeconds = 60
  #tokenExpiresAt = 0
  readonly #presence: PresenceHolder
  #failures = 0
  readonly #alarm = new Alarm()
  #loop: Promise<void> | undefined

  constructor(options: Options) {
    this.#options = options
    this.#held = options.held ?? false
    this.#presence = new PresenceHolder({
      directoryUrl: options.client.baseUrl,
      log: options.log,
      onEnded: () => {
        // Heartbeats take over at once (a 401 there logs in again), and the socket is tried again.
        this.#nextBeatAt = 0
        this.#poke()
      },
    })
  }

  get state(): SessionState {
    return this.#state
  }
  get lastError(): string {
    return this.#lastError
  }
  /** The session token to act with: the peer's, or while held a viewer's (downloads go on meanwhile). */
  get token(): string | undefined {
    return this.#token ?? this.#viewer?.token
  }
  /**
   * The session token, waiting up to `waitMs` while one is on its way: a held peer's session is logged
   * out before its viewer logs in, and a call made in between would go without a token and be refused.
   * Answers at once when none is coming (logged out, or the directory failing).
   */
  async tokenWhenReady(waitMs = 5000): Promise<string | undefined> {
    const deadline = Date.now() + waitMs
    while (!this.token && this.#sessionComing() && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50))
    return this.token
  }

  #sessionComing(): boolean {
    return this.#wanted && !this.#stopped && this.#failures === 0 && !(this.#held && !this.#loggedInOnce)
  }

  get username(): string {
    return this.#options.username
  }

  start() {
    this.#loop ??= this.#run()
  }

  /** Go up (the CLI's `peer login`); resolves once logged in and published, or with the reason it could not. */
  async login(): Promise<SessionState> {
    this.#wanted = true
    this.#poke()
    this.#options.onLoginWanted?.()
    for (let i = 0; i < 100 && this.#state !== 'up' && this.#wanted; i++) {
      await new Promise((r) => setTimeout(r, 100))
      if (this.#failures > 0) break
    }
    return this.#state
  }

  /** Go down (the CLI's `peer logout` and shutdown): the directory marks this peer down and revokes the token. */
  async logout(): Promise<SessionState> {
    this.#wanted = false
    const token = this.#token
    const viewer = this.#viewer?.token
    this.#token = undefined
    this.#viewer = undefined
    this.#needsFullPublish = true
    this.#presence.drop()
    if (token) await this.#logOut(token)
    if (viewer) await this.#logOut(viewer)
    this.#state = 'down'
    this.#poke()
    return this.#state
  }

  async #logOut(token: string) {
    try {
      await this.#options.client.logout(token)
    } catch (err) {
      this.#options.log(`logout: ${err instanceof Error ? err.message : String(err)}`)
    }
  }

  /**
   * Logs in if held (and wanted), and resolves with the session token once there is one, or undefined
   * when none came (not wanted, the directory refused or did not answer) within about ten seconds.
   */
  async release(): Promise<string | undefined> {
    if (this.#held && this.#wanted) {
      this.#held = false
      this.#poke()
    }
    const failures = this.#failures
    for (let i = 0; i < 100 && !this.#token && this.#wanted && this.#failures <= failures; i++) {
      await new Promise((r) => setTimeout(r, 100))
    }
    return this.#token
  }

  /**
   * Down in the directory at once (the peer's session logged out) and no peer login again until
   * release(); meanwhile a viewer session keeps downloads going.
   */
  async hold(reason: string) {
    if (this.#held) return
    this.#held = true
    const token = this.#token
    this.#token = undefined
    this.#needsFullPublish = true
    this.#presence.drop()
    this.#state = 'down'
    if (token) await this.#logOut(token)
    this.#options.log(`down in the directory until ${reason}`)
    this.#poke()
  }

  /**
   * Folder changes to send as a delta (or with the next full publish). A content both removed and added
   * (moved to another folder, or gone and back) is sent as both: the directory removes before it adds.
   */
  publishChanges(added: FileEntry[], removed: string[]) {
    for (const sha of removed) {
      this.#pendingAdd.delete(sha)
      this.#pendingRemove.add(sha)
    }
    for (const entry of added) this.#pendingAdd.set(entry.sha256, entry)
    this.#poke()
  }

  async stop() {
    this.#stopped = true
    await this.logout()
    await this.#loop
  }

  #poke() {
    this.#alarm.wake()
  }

  async #run() {
    const { client, log } = this.#options
    while (!this.#stopped) {
      if (!this.#wanted || (this.#held && !this.#loggedInOnce)) {
        await this.#alarm.sleep(60_000)
        continue
      }
      // The session token this turn acts with. hold() and logout() end it while a request may be on its
      // way: what that request answers (a fresh token, a refusal of the ended one) no longer applies.
      let acting: string | undefined
      const sessionEnded = () => acting !== this.#token
      try {
        if (this.#held) {
          await this.#keepViewer()
          continue
        }
        if (!this.#token) {
          const grant = await client.login({
            username: this.#options.username,
            password: this.#options.password,
            url: this.#options.publicUrl,
            key: this.#options.key,
          })
          if (this.#held || !this.#wanted) {
            // Taken down (or logged out) while the login was on its way: it must not leave the peer up.
            await this.#logOut(grant.token)
            continue
          }
          this.#loggedInOnce = true
          this.#token = grant.token
          const viewer = this.#viewer?.token
          this.#viewer = undefined
          if (viewer) void this.#logOut(viewer)
          this.#needsFullPublish = true
          this.#tokenExpiresAt = Date.parse(grant.expiresAt)
          this.#scheduleBeat(grant.leaseSeconds)
          log(`logged in to ${client.baseUrl} as ${this.#options.username}`)
        }
        acting = this.#token
        if (this.#needsFullPublish) {
          this.#pendingAdd.clear()
          this.#pendingRemove.clear()
          const entries = this.#options.entries()
          await client.putIndex(acting, entries)
          if (sessionEnded()) continue
          this.#needsFullPublish = false
          log(`published ${entries.length} files`)
        } else if (this.#pendingAdd.size > 0 || this.#pendingRemove.size > 0) {
          const add = [...this.#pendingAdd.values()]
          const remove = [...this.#pendingRemove]
          this.#pendingAdd.clear()
          this.#pendingRemove.clear()
          try {
            await client.patchIndex(acting, add, remove)
            log(`published changes: +${add.length} -${remove.length}`)
          } catch (err) {
            this.#needsFullPublish = true
            throw err
          }
          if (sessionEnded()) continue
        }
        if (Date.now() >= this.#nextBeatAt) {
          const grant = await client.heartbeat(acting)
          if (sessionEnded()) continue
          // No token in the answer: the current one has more than half its life left; keep it.
          if (grant.token) acting = this.#token = grant.token
          this.#tokenExpiresAt = Date.parse(grant.expiresAt)
          this.#scheduleBeat(grant.leaseSeconds)
        }
        // After the heartbeat: a socket dropped with the directory is tried again once it answers.
        if (this.#presence.due) {
          const token = acting
          const stillWanted = () => this.#token === token && !this.#held && this.#wanted
          await this.#presence.hold(token, this.#leaseSeconds, stillWanted)
          if (this.#presence.held) this.#scheduleBeat(this.#leaseSeconds)
          if (sessionEnded()) continue
        }
        this.#state = 'up'
        this.#lastError = ''
        this.#failures = 0
        await this.#alarm.sleep(Math.max(0, this.#nextBeatAt - Date.now()))
      } catch (err) {
        // A refusal of a session ended on purpose meanwhile is no failure: the loop goes on from here.
        if (acting !== undefined && sessionEnded()) continue
        await this.#recover(err)
      }
    }
  }

  /** While held: a viewer session, logged in again halfway through each token's life. */
  async #keepViewer() {
    if (!this.#viewer || Date.now() >= this.#viewer.renewAt) {
      const grant = await this.#options.client.login({
        username: this.#options.username,
        password: this.#options.password,
      })
      const previous = this.#viewer?.token
      const now = Date.now()
      this.#viewer = { token: grant.token, renewAt: now + (Date.parse(grant.expiresAt) - now) / 2 }
      if (previous) void this.#logOut(previous)
      this.#failures = 0
    }
    await this.#alarm.sleep(Math.max(1000, this.#viewer.renewAt - Date.now()))
  }

  async #recover(err: unknown) {
    this.#failures++
    const message = err instanceof Error ? err.message : String(err)
    this.#lastError = message
    const backoff =
      Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.#failures, 8)) * (0.75 + Math.random() * 0.5)
    if (err instanceof DirectoryError) {
      if (err.code === 'invalid_credentials') {
        // Retrying a wrong password only locks the account; wait for the user.
        this.#options.log(`login refused: ${message}`)
        this.#wanted = false
        this.#state = 'down'
        return
      }
      if (err.status === 401) {
        // Token refused (directory restarted with a new database, session revoked, token expired): log in again.
        this.#token = undefined
        this.#presence.drop()
        this.#viewer = undefined
        this.#options.log(`token refused (${err.code}); logging in again`)
        await this.#alarm.sleep(Math.min(backoff, 2000))
        return
      }
      if (err.status === 429) {
        await this.#alarm.sleep((err.retryAfterSeconds ?? 5) * 1000)
        return
      }
    }
    this.#state = 'unreachable'
    this.#options.log(`directory: ${message} (retrying in ${(backoff / 1000).toFixed(1)} s)`)
    await this.#alarm.sleep(backoff)
  }

  #scheduleBeat(leaseSeconds: number) {
    this.#leaseSeconds = leaseSeconds
    const period = (leaseSeconds * 1000) / 3
    // Held by the socket, the peer needs a heartbeat only for a fresh token (given past half its life).
    const wait = this.#presence.held ? Math.max(period, (this.#tokenExpiresAt - Date.now()) * 0.6) : period
    this.#nextBeatAt = Date.now() + wait * (0.85 + Math.random() * 0.15)
  }
}
