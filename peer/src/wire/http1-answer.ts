import type { Duplex } from 'node:stream'

/** An answer head's status (`HTTP/1.1 101 …`: 101), or 0 when it is no HTTP/1.1 answer. */
export const answerStatus = (head: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)

/** An answer's head and reason are short: a longer one is no relay's. */
const MAX_ANSWER_BYTES = 16 * 1024

/**
 * Reads an HTTP/1.1 answer's head. After a 101 the connection is paused right there (what follows is
 * the relay's HTTP/2, or a tunnel's bytes); a refusal is read to its end, since its one-line reason is all that follows.
 */
export function readAnswerHead(socket: Duplex): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0)
    let head: string | undefined
    let bodyAt = 0
    const finish = (result?: { head: string; rest: Buffer }, err?: Error) => {
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('close', onEnd)
      socket.off('error', onError)
      if (result) resolve(result)
      else reject(err)
    }
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (head === undefined) {
        const end = received.indexOf('\r\n\r\n')
        if (end < 0) {
          if (received.length > MAX_ANSWER_BYTES)
            finish(undefined, new Error('the relay answered with an oversized head'))
          return
        }
        head = received.toString('latin1', 0, end)
        bodyAt = end + 4
        if (head.startsWith('HTTP/1.1 101')) {
          socket.pause()
          return finish({ head, rest: received.subarray(bodyAt) })
        }
      }
      if (received.length > MAX_ANSWER_BYTES) onEnd()
    }
    const onEnd = () => {
      if (head === undefined)
        finish(undefined, new Error('the relay closed the connection without answering'))
      else finish({ head, rest: received.subarray(bodyAt) })
    }
    const onError = (err: Error) => finish(undefined, err)
    socket.on('data', onData)
    socket.once('end', onEnd)
    socket.once('close', onEnd)
    socket.once('error', onError)
  })
}
