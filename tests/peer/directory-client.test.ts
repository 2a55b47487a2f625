import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { DirectoryClient, DirectoryError } from '../../peer/src/wire/directory-client.ts'
import { closeServer, listen } from '../support/ports.ts'

// The daemon's calls to the directory over HTTP/1.1 keep-alive: a connection the directory closes as
// idle just as a request goes out on it fails that request before any answer. It is sent once more, on
// another connection; a directory that closes every connection is unreachable after that one more try.

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

/**
 * A directory in miniature: `close(n)` says how connection n (from 0) ends once a request has come on
 * it: closed without an answer (`end`), reset (`reset`), or answered with an empty page of peers.
 */
async function directory(close: (n: number) => 'end' | 'reset' | 'answer') {
  const sockets = new Set<net.Socket>()
  let connections = 0
  const server = net.createServer((socket) => {
    sockets.add(socket)
    const how = close(connections++)
    socket.once('data', () => {
      if (how === 'end') return void socket.destroy()
      if (how === 'reset') return void socket.resetAndDestroy()
      const body = JSON.stringify({ peers: [] })
      socket.end(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      )
    })
  })
  closers.push(() => closeServer(server, sockets))
  const port = await listen(server)
  return { url: `http://127.0.0.1:${port}`, connections: () => connections }
}

describe('the directory client', () => {
  it.each(['end', 'reset'] as const)(
    'sends a request once more on another connection when its connection is closed under it (%s)',
    async (how) => {
      const dir = await directory((n) => (n === 0 ? how : 'answer'))
      expect(await new DirectoryClient(dir.url).peers(undefined)).toEqual({ peers: [] })
      expect(dir.connections()).toBe(2)
    },
  )

  it('sends it once more only: a directory that closes every connection is unreachable', async () => {
    const dir = await directory(() => 'end')
    const failed = await new DirectoryClient(dir.url).peers(undefined).catch((err) => err)
    expect(failed).toBeInstanceOf(DirectoryError)
    expect(failed.message).toBe(`The directory at ${dir.url} is not reachable.`)
    expect(dir.connections()).toBe(2)
  })
})
