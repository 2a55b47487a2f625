import type { ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { startReadyProcess } from './ready-process.ts'
import { until } from './waiting.ts'

export const repoRoot = resolve(import.meta.dirname, '../..')
export const nodeBin = join(repoRoot, 'node_modules/.bin/node')
/** The built bin, as `npm ci` (or `npm test`) built it. */
export const directoryBin = join(repoRoot, 'dist/peerdir-directory.js')

export type DirectoryProcess = {
  url: string
  port: number
  dbUrl: string
  output: () => string
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
  child: ChildProcess
}

/**
 * Starts `peerdir-directory` as a real process on 127.0.0.1 and waits until /healthz answers 200. Without
 * a `port` it listens on one the kernel picks (`--port 0`), read from its ready line: no free port
 * picked first that another process could take before it binds.
 */
export async function startDirectoryProcess(
  options: {
    port?: number
    /** The address to listen on (default 127.0.0.1), e.g. one on a veth link the test made. */
    host?: string
    dbUrl?: string
    env?: Record<string, string>
    /** A command the directory runs under, e.g. `setpriv --reuid=65534 ...` (another user). */
    wrap?: string[]
    /** How to start it (default: the checkout's build on the project's Node) and from which folder. */
    command?: string[]
    cwd?: string
  } = {},
): Promise<DirectoryProcess> {
  const dbUrl =
    options.dbUrl ?? `file:${join(mkdtempSync(join(tmpdir(), 'peerdir-dirproc-')), 'directory.db')}`
  const started = await startReadyProcess({
    name: 'directory',
    command: [
      ...(options.wrap ?? []),
      ...(options.command ?? [nodeBin, directoryBin]),
      ...['--host', options.host ?? '127.0.0.1', '--port', String(options.port ?? 0), '--db', dbUrl],
    ],
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, ...options.env },
    ready: /directory listening on (?<url>http:\/\/\S+:(?<port>\d+))/,
  })
  const url = started.ready.groups?.url as string
  await until(async () => {
    try {
      return (await fetch(`${url}/healthz`)).status === 200
    } catch {
      return false // not answering yet
    }
  }, `the directory at ${url} to answer /healthz`)
  return { url, port: started.port, dbUrl, child: started.child, output: started.output, stop: started.stop }
}

/** POST a JSON body to a running directory, with a bearer token when given. */
export const postJson = (url: string, body: unknown, token?: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  })

/** A JSON answer parsed; anything else (a runtime's own error page) kept as text for the failure message. */
function parseBody(text: string) {
  try {
    return text ? JSON.parse(text) : {}
  } catch {
    return { text }
  }
}

/**
 * POST a JSON body from a chosen local address (anything in 127.0.0.0/8 on loopback), so a test can
 * act as several clients. Answers the status, the Retry-After header and the parsed body.
 */
export function postFrom(
  localAddress: string,
  url: string,
  body: unknown,
  options: { token?: string; headers?: Record<string, string> } = {},
): Promise<{
  status: number
  retryAfter: string | undefined
  body: { error?: { code: string } } & Record<string, unknown>
}> {
  const payload = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        localAddress,
        // A fresh connection per call: a kept-alive one would carry the previous call's address.
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...options.headers,
        },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => {
          text += chunk
        })
        res.on('end', () => {
          const retryAfter = res.headers['retry-after']
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
            body: parseBody(text),
          })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(payload)
  })
}
