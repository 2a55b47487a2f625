import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'

/** What a browse asks: whose files, which folder, recursive or not, from which cursor. */
export type BrowseAsked = { username: string; path: string; recursive: boolean; cursor: string }

/**
 * A directory that lies about folders: a proxy in front of a real directory that passes every call on
 * (logins, index writes, searches, files by hash, call tokens) but answers `GET /v1/peers/{username}/files`
 * with whatever `browse` makes of it (a listing full of hostile paths); undefined passes that one on too.
 * Peers that take it for their directory log in, publish and download as usual.
 */
export async function startLyingDirectory(
  realUrl: string,
  browse: (asked: BrowseAsked) => unknown | undefined,
): Promise<{ url: string; browsed: BrowseAsked[]; close: () => Promise<void> }> {
  const browsed: BrowseAsked[] = []
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://directory')
      const listing = /^\/v1\/peers\/([^/]+)\/files$/.exec(url.pathname)
      if (req.method === 'GET' && listing) {
        const asked = {
          username: decodeURIComponent(listing[1] as string),
          path: url.searchParams.get('path') ?? '',
          recursive: url.searchParams.get('recursive') === 'true',
          cursor: url.searchParams.get('cursor') ?? '',
        }
        browsed.push(asked)
        const lie = browse(asked)
        if (lie !== undefined) {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(lie))
          return
        }
      }
      const body = await readBody(req)
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(
          ([name, value]) =>
            typeof value === 'string' && !['host', 'connection', 'content-length'].includes(name),
        ),
      ) as Record<string, string>
      const answer = await fetch(`${realUrl}${req.url}`, {
        method: req.method,
        headers,
        body: body.length > 0 ? new Uint8Array(body) : undefined,
      })
      const passed: Record<string, string> = {}
      answer.headers.forEach((value, name) => {
        if (!['content-encoding', 'content-length', 'transfer-encoding', 'connection'].includes(name))
          passed[name] = value
      })
      res.writeHead(answer.status, passed).end(Buffer.from(await answer.arrayBuffer()))
    } catch (err) {
      res.writeHead(502).end(String(err))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    browsed,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const part of req as AsyncIterable<Buffer>) parts.push(part)
  return Buffer.concat(parts)
}
