import { request } from 'node:http'

/**
 * An HTTP/1.1 request whose body waits for the server's `100 Continue`, as curl sends any body over
 * 1 MiB. A server that refuses the body by its headers (413 by its Content-Length) answers before a
 * byte of it is sent, so the answer is not lost: workerd closes a connection with a body unread, and a
 * client still writing it then meets a reset in place of the answer it had been sent.
 */
export function requestExpectingContinue(
  url: string,
  init: { method: string; headers?: Record<string, string>; body: string },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sent = request(url, {
      method: init.method,
      headers: {
        ...init.headers,
        expect: '100-continue',
        'content-length': String(Buffer.byteLength(init.body)),
      },
    })
    sent.on('continue', () => sent.end(init.body))
    sent.on('response', (answer) => {
      let text = ''
      answer.setEncoding('utf8')
      answer.on('data', (chunk: string) => {
        text += chunk
      })
      answer.on('end', () => {
        resolve({ status: answer.statusCode ?? 0, text })
        // A refused body is never sent: this request cannot end any other way.
        sent.destroy()
      })
      answer.on('error', reject)
    })
    sent.on('error', reject)
    sent.flushHeaders()
  })
}
