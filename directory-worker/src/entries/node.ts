import { mkdirSync } from 'node:fs'
import type { Server } from 'node:http'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createAdaptorServer } from '@hono/node-server'
import { getConnInfo } from '@hono/node-server/conninfo'
import { createClient } from '@libsql/client'
import { WebSocketServer } from 'ws'
import { createApp } from '../app.ts'
import { forwardedClient } from '../auth/client-address.ts'
import { nodeEd25519Signer } from '../auth/node-signer.ts'
import { MemoryLeases } from '../services/memory-leases.ts'
import { parseSettings } from '../settings.ts'
import { FILE_CONNECTION_PRAGMAS } from '../store/file-connection.ts'
import { guardDatabaseFile } from '../store/file-guard.ts'
import { withStorageErrors } from '../store/storage-errors.ts'
import { bufferedLog } from '../util/buffered-log.ts'

export type NodeOptions = { host: string; port: number; databaseUrl: string }

/** How long a stop waits for requests in flight before it closes their connections. */
export const DRAIN_SECONDS = 5

/** Starts the directory on Node with an embedded libSQL database; resolves once it is listening. */
export async function startNodeDirectory(options: NodeOptions, env: Record<string, unknown> = process.env) {
  const settings = parseSettings(env)
  const filePath = options.databaseUrl.startsWith('file:')
    ? options.databaseUrl.startsWith('file://')
      ? fileURLToPath(options.databaseUrl)
      : options.databaseUrl.slice('file:'.length)
    : undefined
  if (filePath) mkdirSync(dirname(filePath), { recursive: true })
  // One connection: every statement runs on this thread anyway, so more bring no parallelism, and
  // the connection PRAGMAs are per connection (a pooled second one ran with synchronous=FULL,
  // fsyncing every heartbeat, and with no busy timeout). A transaction holding it makes others wait
  // their turn instead of failing busy.
  const open = () => {
    const client = createClient({ url: options.databaseUrl, concurrency: 1 })
    if (filePath) {
      // Here, not once after start, so a client the file guard opens afresh has them too. They run
      // before any later statement (one connection, first in line); a failure there fails those too.
      for (const pragma of FILE_CONNECTION_PRAGMAS) client.execute(pragma).catch(() => {})
    }
    return client
  }
  if (filePath) {
    // Create the file (WAL mode lives in it) before the guard takes its inode.
    const first = open()
    await first.execute('PRAGMA journal_mode = WAL')
    first.close()
  }
  const db = filePath ? guardDatabaseFile(filePath, open) : open()
  // WAL lets searches run while an index write is in flight; the setting lives in the file.
  if (filePath) await db.execute('PRAGMA journal_mode = WAL')
  const requests = bufferedLog((text) => process.stdout.write(text))
  // Leases live in this process; storage hears of transitions (see MemoryLeases).
  const presence = new MemoryLeases({ db: withStorageErrors(db), now: Date.now, settings, log: requests.log })
  const app = createApp({
    db,
    settings,
    now: Date.now,
    log: requests.log,
    signer: nodeEd25519Signer,
    presence,
    clientAddress: (c) =>
      (settings.trustProxy && forwardedClient(c.req.header('x-forwarded-for'))) ||
      getConnInfo(c).remote.address,
  })
  const warm = await app.request('/healthz')
  if (warm.status !== 200)
    console.error(`storage not ready at start (${warm.status}); will retry per request`)
  await presence.start().catch((err) => console.error(`presence not restored at start (${err}); will retry`))
  // Presence sockets carry no messages: a small frame limit, and never the token echoed as protocol.
  const sockets = new WebSocketServer({
    noServer: true,
    maxPayload: 1024,
    handleProtocols: (offered) => (offered.has('peerdir.v1') ? 'peerdir.v1' : false),
  })
  const server = createAdaptorServer({
    fetch: app.fetch,
    hostname: options.host,
    websocket: { server: sockets },
  }) as Server
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `port ${options.port} is in use on ${options.host}; pick another with --port`
            : `cannot listen on ${options.host}:${options.port}: ${err.message}`,
        ),
      )
    server.once('error', failed)
    server.listen(options.port, options.host, () => {
      server.off('error', failed)
      resolve()
    })
  }).catch((err: unknown) => {
    presence.stop()
    db.close()
    throw err
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : options.port
  return {
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
    /**
     * Stops taking connections, lets requests in flight finish for up to DRAIN_SECONDS, then closes
     * every connection left: a client holding a request body half sent must not keep the process up.
     */
    async close() {
      presence.stop()
      for (const socket of sockets.clients) socket.terminate()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      const deadline = setTimeout(() => server.closeAllConnections(), DRAIN_SECONDS * 1000)
      await closed
      clearTimeout(deadline)
      requests.flush()
      db.close()
    },
  }
}
