import { request } from 'node:http'

/** How long the headers wait for their answer: far past any refusal by the headers, even under load. */
const ANSWER_MS = 60_000

/**
 * Sends the headers of a request whose body the server must refuse by them alone (413 by its
 * Content-Length), asking first as curl does for any body over 1 MiB (`Expect: 100-continue`), and
 * answers the server's refusal. The body is never sent: workerd, sent one, closed the connection with
 * it unread, and a client still writing it met a reset in place of the answer. workerd answers at
 * once; Node's server says `100 Continue` to every request, then answers as the app does. A server
 * that waits for the body to refuse it fails this after a minute, saying so.
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
    let answered = false
    const timer = setTimeout(() => {
      reject(new Error(`${init.method} ${url}: no answer to the headers in ${ANSWER_MS} ms`))
      asked.destroy()
    }, ANSWER_MS)
    asked.on('response', (answer) => {
      let text = ''
      answer.setEncoding('utf8')
      answer.on('data', (chunk: string) => {
        text += chunk
      })
      answer.on('end', () => {
        answered = true
        clearTimeout(timer)
        resolve({ status: answer.statusCode ?? 0, text })
        // The body is never sent: the request cannot end any other way.
        asked.destroy()
      })
      answer.on('error', reject)
    })
    // Destroyed once the answer is read: its "socket hang up" then is ours.
    asked.on('error', (err) => {
      if (answered) return
      clearTimeout(timer)
      reject(err)
    })
    asked.flushHeaders()
  })
}
