import { EventEmitter } from 'node:events'
import type http2 from 'node:http2'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MAX_STREAM_WINDOW, MIN_STREAM_WINDOW, WindowBudget } from '../../peer/src/relay/buffer-budget.ts'
import { RELAY_DEFAULTS } from '../../peer/src/relay/defaults.ts'

/** A session that records the SETTINGS it is sent and acknowledges them only when told to. */
function fakeSession() {
  const sent: { window: number; ack: () => void }[] = []
  const session = Object.assign(new EventEmitter(), {
    destroyed: false,
    closed: false,
    destroy() {
      this.destroyed = true
    },
    settings(settings: { initialWindowSize: number }, ack: () => void) {
      sent.push({ window: settings.initialWindowSize, ack })
    },
  })
  return { session: session as unknown as http2.Http2Session & { destroyed: boolean }, sent }
}

describe('the relay telling sessions their window', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('keeps one SETTINGS unacknowledged per session, however often callers move the window', () => {
    const budget = new WindowBudget(4 * MAX_STREAM_WINDOW)
    const { session, sent } = fakeSession()
    budget.track(session, MAX_STREAM_WINDOW)
    expect(sent).toHaveLength(0)
    // Callers opening and closing calls in a loop move the window down and up again each time.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 8; i++) budget.callStarted()
      for (let i = 0; i < 8; i++) budget.callEnded()
    }
    for (let i = 0; i < 8; i++) budget.callStarted()
    expect(sent).toHaveLength(1)
    expect(session.destroyed).toBe(false)
    // Once acknowledged, the window wanted now is sent, once.
    expect(sent[0]?.window).not.toBe(budget.window)
    sent[0]?.ack()
    expect(sent.map((s) => s.window)).toEqual([sent[0]?.window, budget.window])
    sent[1]?.ack()
    expect(sent).toHaveLength(2)
  })

  it('caps the calls at 4,096 whatever the budget, and lower where the smallest windows would pass it', () => {
    expect(new WindowBudget(RELAY_DEFAULTS.maxBufferBytes).maxCalls).toBe(4096)
    expect(new WindowBudget(16 * 1024 ** 3).maxCalls).toBe(4096)
    // Two windows of the smallest size per call: 64 MiB holds 1,024 calls.
    expect(new WindowBudget(64 * 1024 ** 2).maxCalls).toBe((64 * 1024 ** 2) / (2 * MIN_STREAM_WINDOW))
  })

  it('closes a session that leaves its window change unacknowledged for 10 s, and only that one', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const budget = new WindowBudget(4 * MAX_STREAM_WINDOW)
    const silent = fakeSession()
    const prompt = fakeSession()
    budget.track(silent.session, MAX_STREAM_WINDOW)
    budget.track(prompt.session, MAX_STREAM_WINDOW)
    for (let i = 0; i < 8; i++) budget.callStarted() // the window halves: both sessions are told
    expect([silent.sent.length, prompt.sent.length]).toEqual([1, 1])
    // Acknowledged, each change in turn (the latest window follows the first ack).
    for (let acked = 0; acked < prompt.sent.length; acked++) prompt.sent[acked]?.ack()
    expect(prompt.sent.at(-1)?.window).toBe(budget.window)
    vi.advanceTimersByTime(9_999)
    expect(silent.session.destroyed).toBe(false)
    vi.advanceTimersByTime(1)
    expect(silent.session.destroyed).toBe(true)
    expect(prompt.session.destroyed).toBe(false)
  })

  it('halves a link’s windows as its own peer’s calls pass 8 MiB worth, and widens them again as they end', () => {
    const budget = new WindowBudget(1024 ** 3) // room for every call at full windows: only the link's rule applies
    const link = fakeSession()
    budget.track(link.session, MAX_STREAM_WINDOW)
    const told = () => {
      link.sent.at(-1)?.ack()
      return link.sent.at(-1)?.window
    }
    budget.linkCalls(link.session, 8) // 8 calls of 1 MiB: 8 MiB, not past it
    expect(link.sent).toHaveLength(0)
    budget.linkCalls(link.session, 9)
    expect(told()).toBe(MAX_STREAM_WINDOW / 2)
    budget.linkCalls(link.session, 64)
    expect(told()).toBe((8 * 1024 * 1024) / 64)
    budget.linkCalls(link.session, 1)
    expect(told()).toBe(MAX_STREAM_WINDOW)
  })
})
