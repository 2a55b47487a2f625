import { request } from 'node:http'
import { fetchResending } from './fetch-resending.ts'

/**
 * Sends a body a server may refuse by its headers (413 by its Content-Length), asking first as curl does
 * for any body over 1 MiB (`Expect: 100-continue`). workerd answers at once, before a byte of the body
 * is sent; without asking, it closed the connection with the body unread and a client still writing it
 * met a reset in place of the answer. A server that says `100 Continue` (Node's, for every request) gets
 * the body through fetch (fetchResending), which reads an answer that comes while the body is still going
 * out.
 */
export function requestExpectingContinue(
  url: string,
  init: { method: string; headers?: Record<string, string>; body: string },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const asked = request(url, {
      method: init.method,
      headers: {
        ...init.headers,
        expect: '100-continue',
        'content-length': String(Buffer.byteLength(init.body)),
      },
    })
    let toFetch = false
    asked.on('continue', () => {
      toFetch = true
      asked.destroy()
      fetchResending(url, init)
        .then(async (answer) => resolve({ status: answer.status, text: await answer.text() }))
        .catch(reject)
    })
    asked.on('response', (answer) => {
      let text = ''
      answer.setEncoding('utf8')
      answer.on('data', (chunk: string) => {
        text += chunk
      })
      answer.on('end', () => {
        resolve({ status: answer.statusCode ?? 0, text })
        // The body was refused unsent: the request cannot end any other way.
        asked.destroy()
      })
      answer.on('error', reject)
    })
    // Destroyed once the answer is read or the body goes through fetch: its "socket hang up" is ours.
    asked.on('error', (err) => {
      if (!toFetch) reject(err)
    })
    asked.flushHeaders()
  })
}
