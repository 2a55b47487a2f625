import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getRequestListener } from '@hono/node-server'
import { type Client, createClient, type InStatement } from '@libsql/client'
import { createApp } from '../../directory-worker/src/app.ts'
import { MemoryLeases } from '../../directory-worker/src/services/memory-leases.ts'
import { parseSettings } from '../../directory-worker/src/settings.ts'
import type { Database } from '../../directory-worker/src/store/database.ts'
import { listen } from './ports.ts'

export type TestDirectory = {
  app: ReturnType<typeof createApp>
  db: Client
  dbPath: string
  clock: { now: number; advance: (seconds: number) => void }
  logs: string[]
  request: (path: string, init?: RequestInit & { token?: string; json?: unknown }) => Promise<Response>
  /** With `memoryLeases`: the leases as the Node entry keeps them (the test calls sweep() itself). */
  leases?: MemoryLeases
  close: () => void
}

/**
 * The real app over a real libSQL file in a temp folder, with a clock the test moves. `gate` sees
 * each statement the app sends (to hold or fail it at a chosen point) before it reaches the file.
 */
export function createTestDirectory(
  env: Record<string, string> = {},
  gate?: (statement: InStatement) => Promise<void>,
  options: { memoryLeases?: boolean } = {},
): TestDirectory {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-dir-'))
  const dbPath = join(dir, 'directory.db')
  const db = createClient({ url: `file:${dbPath}` })
  const clock = {
    now: Date.now(),
    advance(seconds: number) {
      clock.now += seconds * 1000
    },
  }
  const logs: string[] = []
  const settings = parseSettings(env)
  const now = () => clock.now
  const log = (line: string) => logs.push(line)
  const appDb = gate ? gated(db, gate) : db
  const leases = options.memoryLeases ? new MemoryLeases({ db: appDb, now, settings, log }) : undefined
  const app = createApp({ db: appDb, settings, now, log, presence: leases })
  return {
    app,
    db,
    dbPath,
    clock,
    logs,
    leases,
    request: async (path, init = {}) => {
      const { token, json, ...rest } = init
      const headers = new Headers(rest.headers)
      if (token) headers.set('authorization', `Bearer ${token}`)
      if (json !== undefined) headers.set('content-type', 'application/json')
      return app.request(path, {
        ...rest,
        headers,
        body: json !== undefined ? JSON.stringify(json) : rest.body,
      })
    },
    close: () => {
      db.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * Serves a test directory's app over HTTP on loopback, for clients that speak to a directory by URL (the
 * daemon's DirectoryClient), while the test still moves its clock. `close` ends every connection.
 */
export async function serveTestDirectory(
  directory: TestDirectory,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(getRequestListener(directory.app.fetch))
  const url = `http://127.0.0.1:${await listen(server)}`
  return {
    url,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

const gated = (db: Client, gate: (statement: InStatement) => Promise<void>): Database => ({
  execute: async (statement) => {
    await gate(statement)
    return db.execute(statement)
  },
  batch: async (statements, mode) => {
    for (const statement of statements) await gate(statement)
    return db.batch(statements, mode)
  },
})

/** Deterministic distinct 64-hex strings for test contents (the directory never sees bytes, only hashes). */
export function sha(seed: string | number): string {
  let h = 2166136261
  for (const ch of String(seed)) h = Math.imul(h ^ (ch.codePointAt(0) ?? 0), 16777619) >>> 0
  let out = ''
  for (let i = 0; out.length < 64; i++) {
    h = Math.imul(h ^ i, 2654435761) >>> 0
    out += h.toString(16).padStart(8, '0')
  }
  return out.slice(0, 64)
}

export const fileEntry = (name: string, seed: string | number = name, size = 1000) => ({
  name,
  size,
  sha256: sha(`content:${seed}`),
  chunkSize: 1_048_576,
  manifest: sha(`manifest:${seed}`),
})

export async function login(
  directory: TestDirectory,
  username: string,
  options: { password?: string; url?: string } = {},
): Promise<string> {
  const response = await directory.request('/v1/login', {
    method: 'POST',
    json: {
      username,
      password: options.password ?? 'correct horse',
      url: options.url ?? 'http://127.0.0.1:50051',
    },
  })
  if (response.status !== 200)
    throw new Error(`login ${username}: ${response.status} ${await response.text()}`)
  return ((await response.json()) as { token: string }).token
}

export async function publish(
  directory: TestDirectory,
  token: string,
  files: ReturnType<typeof fileEntry>[],
) {
  const response = await directory.request('/v1/index', { method: 'PUT', token, json: { files } })
  if (response.status !== 200) throw new Error(`publish: ${response.status} ${await response.text()}`)
}
