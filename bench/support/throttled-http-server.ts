// A plain HTTP/1.1 server of one file with Range requests, its total output capped at a rate shared by
// all its connections (the token bucket of `peer start --max-upload-rate`): the many-source
// comparison's stand-in for a mirror. Never part of peerdir.
//   throttled-http-server.ts <file> <bytes-per-second> [host]   prints "listening on port <n>"

import { once } from 'node:events'
import { createReadStream, statSync } from 'node:fs'
import { createServer, type ServerResponse } from 'node:http'
import { RateLimiter } from '../../peer/src/serve/rate-limit.ts'

const [file = '', rateArg = '', host = '127.0.0.1'] = process.argv.slice(2)
const bytesPerSecond = Number(rateArg)
if (!file || !(bytesPerSecond > 0)) {
  console.error('usage: throttled-http-server.ts <file> <bytes-per-second> [host]')
  process.exit(2)
}
const size = statSync(file).size
const slice = 64 * 1024

// The very token bucket behind `peer start --max-upload-rate`, so both sides are capped alike.
const bucket = new RateLimiter(bytesPerSecond)

/** The single byte range a `Range` header asks for, undefined for the whole file, null if unsatisfiable. */
function requestedRange(header: string | undefined): { start: number; end: number } | undefined | null {
  const match = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null
  if (!match) return undefined
  const [, from = '', to = ''] = match
  if (from === '' && to === '') return undefined
  const range =
    from === ''
      ? { start: Math.max(0, size - Number(to)), end: size - 1 }
      : { start: Number(from), end: to === '' ? size - 1 : Math.min(Number(to), size - 1) }
  return range.start <= range.end && range.start < size ? range : null
}

async function send(res: ServerResponse, start: number, end: number) {
  const stream = createReadStream(file, { start, end, highWaterMark: slice })
  // Downloaders drop connections mid-range when they re-split the work: stop waiting for them then.
  const closed = new AbortController()
  res.once('close', () => closed.abort())
  try {
    for await (const data of stream) {
      await bucket.take((data as Buffer).length)
      if (closed.signal.aborted) return
      if (!res.write(data)) await once(res, 'drain', { signal: closed.signal })
    }
    res.end()
  } catch {
    res.destroy()
  } finally {
    stream.destroy()
  }
}

const server = createServer((req, res) => {
  const range = requestedRange(req.headers.range)
  if (range === null) {
    res.writeHead(416, { 'content-range': `bytes */${size}` }).end()
    return
  }
  const { start, end } = range ?? { start: 0, end: size - 1 }
  res.writeHead(range ? 206 : 200, {
    'accept-ranges': 'bytes',
    'content-type': 'application/octet-stream',
    'content-length': end - start + 1,
    ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
  })
  if (req.method === 'HEAD') res.end()
  else void send(res, start, end)
})
server.listen(0, host, () => {
  const address = server.address()
  console.log(`listening on port ${typeof address === 'object' && address ? address.port : 0}`)
})
process.on('SIGTERM', () => process.exit(0))
