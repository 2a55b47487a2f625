import type http2 from 'node:http2'

/**
 * Pings a link's session every period and destroys it when a ping goes unanswered for a whole period
 * (a machine switched off, a NAT that forgot the mapping). Runs from a timer, where a throw would end
 * the relay and every link it carries: by the time a tick comes the session may be closing, destroyed or
 * gone away, and its 'close' comes only once its socket closes, which a half-open peer delays at will.
 * So each tick looks before it pings, the ping itself cannot throw out, and the timer stops at the first
 * sign the session is over, not only at its 'close'. Returns the stop.
 */
export function pingUntilGone(session: http2.Http2Session, periodMs: number): () => void {
  let awaitingPong = false
  const timer = setInterval(() => {
    if (session.destroyed || session.closed) return stop()
    if (awaitingPong) return end()
    try {
      awaitingPong = session.ping((err) => {
        awaitingPong = false
        if (err) end()
      })
    } catch {
      end()
    }
  }, periodMs)
  const stop = () => clearInterval(timer)
  const end = () => {
    stop()
    session.destroy()
  }
  session.once('close', stop)
  session.once('goaway', stop)
  session.once('error', end)
  return stop
}

/** Runs `change` on a session unless it is over; a session that refuses it (closing meanwhile) is ended. */
export function whileOpen(session: http2.Http2Session, change: () => void) {
  if (session.destroyed || session.closed) return
  try {
    change()
  } catch {
    session.destroy()
  }
}
