import net from 'node:net'

/**
 * Listens on `port` at `host` (default: one the kernel picks, on 127.0.0.1) and resolves with the port it
 * got; rejects on a listen error (EADDRINUSE) instead of emitting it. For the servers tests and benches
 * make in process; a server a test starts as a process says its port in its ready line instead.
 */
export function listen(server: net.Server, port = 0, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve((server.address() as net.AddressInfo).port)
    })
  })
}

/**
 * A port that was free a moment ago on 127.0.0.1, for a process that cannot be told `--port 0` (another
 * process may take it before that one binds it).
 */
export async function freePort(): Promise<number> {
  const server = net.createServer()
  const port = await listen(server)
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Ends what a test server holds (sockets, sessions), then closes the server: resolves once it is closed. */
export function closeServer(server: net.Server, held: Iterable<{ destroy: () => unknown }>): Promise<void> {
  return new Promise((resolve) => {
    for (const one of held) one.destroy()
    server.close(() => resolve())
  })
}
