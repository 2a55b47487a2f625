import type { FileEntry } from '../content/share-index.ts'

export type Source = { username: string; url: string }
export type Result = FileEntry & { sources: Source[] }
export type Peer = { username: string; url: string; state: 'up' | 'down'; files: number; lastSeen: string }
export type Grant = { token: string; expiresAt: string; leaseSeconds: number }

/** A refusal from the directory (status and SPEC error code), or `unreachable` when it did not answer. */
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

const TIMEOUT_MS = 15_000
const INDEX_TIMEOUT_MS = 120_000

/** The directory's REST API (SPEC /v1), typed, with one error type for every failure. */
export class DirectoryClient {
  readonly baseUrl: string

  constructor(baseUrl: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, '')
  }

  login(credentials: { username: string; password: string; url: string }) {
    return this.#call<Grant & { peer: Peer }>('POST', '/v1/login', { body: credentials })
  }

  heartbeat(token: string) {
    return this.#call<Grant>('POST', '/v1/heartbeat', { token })
  }

  logout(token: string) {
    return this.#call<{ peer: Peer }>('POST', '/v1/logout', { token })
  }

  putIndex(token: string, files: FileEntry[]) {
    return this.#call<{ files: number }>('PUT', '/v1/index', {
      token,
      body: { files },
      timeoutMs: INDEX_TIMEOUT_MS,
    })
  }

  patchIndex(token: string, add: FileEntry[], remove: string[]) {
    return this.#call<{ files: number }>('PATCH', '/v1/index', {
      token,
      body: { add, remove },
      timeoutMs: INDEX_TIMEOUT_MS,
    })
  }

  search(query: string, limit: number, token?: string) {
    const params = new URLSearchParams({ q: query, limit: String(limit) })
    return this.#call<{ results: Result[] }>('GET', `/v1/search?${params}`, { token })
  }

  /** The content by hash with its live sources, or undefined when no peer ever offered it. */
  async file(sha256: string, token?: string): Promise<Result | undefined> {
    try {
      return await this.#call<Result>('GET', `/v1/files/${sha256}`, { token })
    } catch (err) {
      if (err instanceof DirectoryError && err.status === 404) return undefined
      throw err
    }
  }

  peers(state: string | undefined, token?: string) {
    const query = state ? `?state=${encodeURIComponent(state)}` : ''
    return this.#call<{ peers: Peer[] }>('GET', `/v1/peers${query}`, { token })
  }

  async #call<T>(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; timeoutMs?: number } = {},
  ): Promise<T> {
    let response: Response
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
        body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
        signal: AbortSignal.timeout(options.timeoutMs ?? TIMEOUT_MS),
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
