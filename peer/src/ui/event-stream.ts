import type { DaemonEvents } from '../daemon/daemon-events.ts'
import { APP_HEADERS, type AppResponse } from './app-http.ts'

/** A comment line this often keeps the stream's connection from looking idle to anything in between. */
const KEEPALIVE_MS = 25_000

/**
 * The daemon's events as Server-Sent Events, one `data:` JSON line each, from the daemon's one stream
 * (daemon-events.ts: a bounded queue per follower, a `missed` entry when the page fell behind), until
 * the page goes away.
 */
export async function streamEvents(events: DaemonEvents, res: AppResponse) {
  const gone = new AbortController()
  res.once('close', () => gone.abort())
  res.writeHead(200, { ...APP_HEADERS, 'content-type': 'text/event-stream; charset=utf-8' })
  res.write(': following\n\n')
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS)
  try {
    for await (const event of events.follow(gone.signal)) {
      res.write(`data: ${JSON.stringify(event)}\n\n`)
    }
  } finally {
    clearInterval(keepalive)
  }
}
