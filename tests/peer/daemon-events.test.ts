import { describe, expect, it } from 'vitest'
import { DaemonEvents } from '../../peer/src/daemon/daemon-events.ts'

const session = (state: string) => ({ type: 'session' as const, state, relay: '', reason: '' })

describe('DaemonEvents', () => {
  it('keeps at most its bound for a follower that stops reading, then tells it how many it missed', async () => {
    const events = new DaemonEvents(4)
    const stop = new AbortController()
    const follower = events.follow(stop.signal)
    const first = follower.next() // subscribes, and waits for the first event
    events.emit(session('up'))
    expect((await first).value).toMatchObject({ type: 'session', state: 'up' })
    // The follower reads nothing while 10 more come: emit never waits for it.
    for (let i = 0; i < 10; i++) events.emit(session(`s${i}`))
    const seen: string[] = []
    for (let i = 0; i < 6; i++) {
      if (i === 5) events.emit(session('later'))
      const { value } = await follower.next()
      seen.push(
        value?.type === 'missed' ? `missed ${value.count}` : String(value?.type === 'session' && value.state),
      )
    }
    // In order, with the gap where the events that did not fit were, and the follower goes on after it.
    expect(seen).toEqual(['s0', 's1', 's2', 's3', 'missed 6', 'later'])
    stop.abort()
  })
})
