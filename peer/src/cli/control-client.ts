import type http from 'node:http'
import type { MessageJsonType } from '@bufbuild/protobuf'
import type { GenService } from '@bufbuild/protobuf/codegenv2'
import type { ControlService } from '../gen/peerdir/v1/control_pb.ts'

/**
 * The CLI's client of its daemon's ControlService: the Connect protocol with JSON, over HTTP/1.1 on the
 * Unix socket in the daemon's state folder (wire/transport.ts `listenForControl`), typed by the generated
 * JSON types. It is not Connect's own client on purpose: loading protobuf, Connect, HTTP/2 and TLS is
 * most of what a command would otherwise spend starting, and a command only asks its daemon one thing.
 * The daemon writes every field of its answers, defaults included (`alwaysEmitImplicit`), so an answer is
 * whole.
 */
type Methods = typeof ControlService extends GenService<infer M> ? M : never
export type ControlMethod = keyof Methods
export type ControlRequest<K extends ControlMethod> = MessageJsonType<Methods[K]['input']>
export type ControlAnswer<K extends ControlMethod> = Whole<MessageJsonType<Methods[K]['output']>>
type Whole<T> = {
  [F in keyof T]-?: NonNullable<T[F]> extends (infer E)[] ? Whole<E>[] : Whole<NonNullable<T[F]>>
}

const SERVICE = 'peerdir.v1.ControlService'
// Not `import http from 'node:http'`: an ES import of node:http reads every export, and its lazy ones
// load HTTP/2, TLS, zlib and worker threads, the very modules this client exists to avoid.
const { request: httpRequest } = process.getBuiltinModule('node:http')

/** The daemon answered the call with a Connect error (`code` as the Connect protocol spells it). */
export class ControlError extends Error {
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.code = code
  }
}

/** Nothing accepted the connection: no daemon is listening there. */
export class DaemonUnreachable extends Error {}

/** The connection closed before the answer was whole: the daemon stopped or was killed mid-call. */
export class DaemonWentAway extends Error {}

export class ControlClient {
  readonly #socketPath: string
  readonly #headers: Record<string, string>

  constructor(socketPath: string, token: string) {
    this.#socketPath = socketPath
    this.#headers = { authorization: `Bearer ${token}`, 'connect-protocol-version': '1' }
  }

  async call<K extends ControlMethod>(method: K, request: ControlRequest<K>): Promise<ControlAnswer<K>> {
    const response = await this.#post(method, 'application/json', Buffer.from(JSON.stringify(request)))
    const body = await readAll(response)
    if (response.statusCode !== 200) throw errorFrom(body)
    return JSON.parse(body.toString('utf8'))
  }

  /** A server-streaming call: each message as it arrives; the stream's end carries its error, if any. */
  async *stream<K extends ControlMethod>(
    method: K,
    request: ControlRequest<K>,
    onHeaders?: (headers: http.IncomingHttpHeaders) => void,
  ): AsyncGenerator<ControlAnswer<K>> {
    const response = await this.#post(method, 'application/connect+json', envelope(JSON.stringify(request)))
    onHeaders?.(response.headers)
    try {
      if (response.statusCode !== 200) throw errorFrom(await readAll(response))
      let pending: Buffer = Buffer.alloc(0)
      try {
        for await (const chunk of response as AsyncIterable<Buffer>) {
          pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
          while (pending.length >= 5) {
            const length = pending.readUInt32BE(1)
            if (pending.length < 5 + length) break
            const flags = pending[0] ?? 0
            const message = JSON.parse(pending.toString('utf8', 5, 5 + length))
            pending = pending.subarray(5 + length)
            // Flag 2 marks the end of the stream: trailers, and the error if the call failed.
            if (flags & 2) {
              if (message.error) throw new ControlError(message.error.code, message.error.message ?? '')
              return
            }
            yield message
          }
        }
      } catch (err) {
        if (err instanceof ControlError) throw err
        throw new DaemonWentAway(err instanceof Error ? err.message : String(err))
      }
      throw new DaemonWentAway('the answer ended before the end of the stream')
    } finally {
      response.destroy()
    }
  }

  /**
   * A content's bytes from the daemon's gateway on the same socket (`GET /content/<sha256>`), as they
   * arrive verified. A refusal is a ControlError with the HTTP status as its code (`http_404`).
   */
  async content(sha256: string, options: { keep: boolean }): Promise<http.IncomingMessage> {
    const path = `/content/${sha256}${options.keep ? '' : '?keep=0'}`
    const response = await this.#send({
      method: 'GET',
      path,
      headers: { authorization: this.#headers.authorization },
    })
    if (response.statusCode !== 200) {
      const text = (await readAll(response)).toString('utf8').trim()
      throw new ControlError(
        `http_${response.statusCode}`,
        text || `the daemon answered ${response.statusCode}`,
      )
    }
    return response
  }

  #post(method: string, contentType: string, body: Buffer): Promise<http.IncomingMessage> {
    const path = `/${SERVICE}/${method[0]?.toUpperCase()}${method.slice(1)}`
    return this.#send(
      {
        method: 'POST',
        path,
        headers: { ...this.#headers, 'content-type': contentType, 'content-length': String(body.length) },
      },
      body,
    )
  }

  #send(
    options: { method: string; path: string; headers: Record<string, string | undefined> },
    body?: Buffer,
  ): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const request = httpRequest({ socketPath: this.#socketPath, ...options }, resolve)
      request.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          // Refused: nothing listens on the socket; missing: the daemon stopped and removed it.
          err.code === 'ECONNREFUSED' || err.code === 'ENOENT'
            ? new DaemonUnreachable(err.message)
            : new DaemonWentAway(err.message),
        ),
      )
      request.end(body)
    })
  }
}

function envelope(json: string): Buffer {
  const message = Buffer.from(json)
  const framed = Buffer.alloc(5 + message.length)
  framed.writeUInt32BE(message.length, 1)
  message.copy(framed, 5)
  return framed
}

async function readAll(response: http.IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = []
  try {
    for await (const part of response as AsyncIterable<Buffer>) parts.push(part)
  } catch (err) {
    throw new DaemonWentAway(err instanceof Error ? err.message : String(err))
  }
  return Buffer.concat(parts)
}

function errorFrom(body: Buffer): ControlError {
  try {
    const error = JSON.parse(body.toString('utf8')) as { code?: string; message?: string }
    return new ControlError(error.code ?? 'unknown', error.message ?? 'the daemon refused the call')
  } catch {
    return new ControlError('unknown', 'the daemon answered something that is not a Connect error')
  }
}
