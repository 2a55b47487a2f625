import type {
  CallToken,
  CallTokenRequest,
  FileEntry,
  FileVariants,
  HeartbeatResponse,
  IndexCount,
  IndexPatch,
  IndexReplace,
  LoginRequest,
  LoginResponse,
  Peer,
  PeerFiles,
  PeerPage,
  RelayTokenRequest,
  SearchResponse,
  SessionState,
} from '../../../contract/api-types.ts'
import { closedUnderRequest } from './closed-under-request.ts'

// The REST contract's types (contract/, derived from its zod schemas): one definition of the API for both ends.
export type {
  FileEntry,
  FileVariants,
  Peer,
  PeerFiles,
  Result,
  Source,
} from '../../../contract/api-types.ts'

/** A refusal from the directory (status and the error body's code), or `unreachable` when it did not answer. */
export class DirectoryError extends Error {
  readonly status: number
  readonly code: string
  readonly retryAfterSeconds: number | undefined

  constructor(status: number, code: string, message: string, retryAfterSeconds?: number) {
    super(message)
    this.name = 'DirectoryError'
    this.status = status
    this.code = code
    this.retryAfterSeconds = retryAfterSeconds
  }

  get unreachable() {
    return this.status === 0 || this.status === 503
  }
}

export type BrowseOptions = { path: string; recursive: boolean; limit?: number; cursor?: string }

const TIMEOUT_MS = 15_000
const INDEX_TIMEOUT_MS = 120_000

/** The directory's REST API (/v1, as `/openapi.json` describes it), typed by the contract, with one error type for every failure. */
export class DirectoryClient {
  readonly baseUrl: string

  constructor(baseUrl: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, '')
  }

  /** Without url: a viewer session, which reads and asks for call tokens while the peer stays down. */
  login(credentials: LoginRequest) {
    return this.#call<LoginResponse>('POST', '/v1/login', { body: credentials })
  }

  /** Renews the lease; the answer's `token` is there only when the current one should be replaced. */
  heartbeat(token: string) {
    return this.#call<HeartbeatResponse>('POST', '/v1/heartbeat', { token })
  }

  logout(token: string) {
    return this.#call<{ peer: Peer }>('POST', '/v1/logout', { token })
  }

  /** A call token for the peer `audience`: what to present to it, and to no one else. */
  callToken(token: string, audience: string) {
    return this.#call<CallToken>('POST', '/v1/call-tokens', {
      token,
      body: { audience } satisfies CallTokenRequest,
    })
  }

  /** A token to register with the relay at origin `relay` once (peer start --relay). */
  relayToken(token: string, relay: string) {
    return this.#call<CallToken>('POST', '/v1/relay-tokens', {
      token,
      body: { relay } satisfies RelayTokenRequest,
    })
  }

  /** Whether the session `sessionId` (a caller's call token names it) is still open; asked with our own token. */
  sessionState(token: string, sessionId: string, timeoutMs?: number) {
    return this.#call<SessionState>('GET', `/v1/sessions/${encodeURIComponent(sessionId)}`, {
      token,
      timeoutMs,
    })
  }

  putIndex(token: string, files: FileEntry[]) {
    return this.#call<IndexCount>('PUT', '/v1/index', {
      token,
      body: { files } satisfies IndexReplace,
      timeoutMs: INDEX_TIMEOUT_MS,
    })
  }

  patchIndex(token: string, add: FileEntry[], remove: string[]) {
    return this.#call<IndexCount>('PATCH', '/v1/index', {
      token,
      body: { add, remove } satisfies IndexPatch,
      timeoutMs: INDEX_TIMEOUT_MS,
    })
  }

  search(query: string, limit: number, token?: string, since?: string) {
    const params = new URLSearchParams({ q: query, limit: String(limit), ...(since && { since }) })
    return this.#call<SearchResponse>('GET', `/v1/search?${params}`, { token })
  }

  /**
   * The content by hash: its variants (holders that disagree on manifest, size or chunk size), most
   * live holders first, each with its live sources; undefined when no peer ever offered it.
   */
  async file(sha256: string, token?: string): Promise<FileVariants | undefined> {
    try {
      return await this.#call<FileVariants>('GET', `/v1/files/${sha256}`, { token })
    } catch (err) {
      if (err instanceof DirectoryError && err.status === 404) return undefined
      throw err
    }
  }

  /** What `username` shares under `path`; a 404 (unknown user or folder) is a DirectoryError. */
  browse(username: string, options: BrowseOptions, token?: string) {
    const params = new URLSearchParams({ path: options.path, recursive: String(options.recursive) })
    if (options.limit) params.set('limit', String(options.limit))
    if (options.cursor) params.set('cursor', options.cursor)
    return this.#call<PeerFiles>('GET', `/v1/peers/${encodeURIComponent(username)}/files?${params}`, {
      token,
    })
  }

  peers(state: string | undefined, token?: string) {
    const query = state ? `?state=${encodeURIComponent(state)}` : ''
    return this.#call<PeerPage>('GET', `/v1/peers${query}`, { token })
  }

  async #call<T>(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; timeoutMs?: number } = {},
  ): Promise<T> {
    const signal = AbortSignal.timeout(options.timeoutMs ?? TIMEOUT_MS)
    const send = () =>
      fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
        body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
        signal,
      })
    let response: Response
    try {
      response = await send().catch((err) => {
        if (!closedUnderRequest(err) || signal.aborted) throw err
        return send()
      })
    } catch (err) {
      const why =
        err instanceof Error && err.name === 'TimeoutError' ? 'did not answer in time' : 'is not reachable'
      throw new DirectoryError(0, 'unreachable', `The directory at ${this.baseUrl} ${why}.`)
    }
    const text = await response.text()
    let body: unknown
    try {
      body = text ? JSON.parse(text) : {}
    } catch {
      throw new DirectoryError(
        response.status,
        'bad_response',
        `The directory answered ${response.status} with non-JSON.`,
      )
    }
    if (!response.ok) {
      const error = (body as { error?: { code?: string; message?: string } }).error
      const retryAfter = Number(response.headers.get('retry-after'))
      throw new DirectoryError(
        response.status,
        error?.code ?? 'http_error',
        error?.message ?? `The directory answered ${response.status}.`,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
      )
    }
    return body as T
  }
}
