import { describe, expect, it, onTestFinished } from 'vitest'
import { RateLimiter } from '../../peer/src/serve/rate-limit.ts'

const KiB = 1024

describe('RateLimiter', () => {
  it('serves callers in the order they asked: one asking for more is not starved by many small ones', async () => {
    const limiter = new RateLimiter(200 * KiB) // a burst of 50 KiB
    const granted: string[] = []
    let running = true
    onTestFinished(() => {
      running = false
    })
    const small = async (name: string) => {
      while (running) {
        await limiter.take(4 * KiB)
        granted.push(name)
      }
    }
    const loops = [small('a'), small('b')]
    // The burst is spent after 13 grants; from then on both loops are waiting in line.
    while (granted.length < 20) await limiter.take(0)
    const asked = granted.length
    await limiter.take(50 * KiB)
    const before = granted.length - asked
    running = false
    await Promise.all(loops)
    // Only the small calls already in line when it asked went first (the one it joined behind, and a
    // second that may have asked within the same grant).
    expect(before).toBeLessThanOrEqual(2)
    // And the two small loops took turns.
    const counts = { a: 0, b: 0 }
    for (const name of granted) counts[name as 'a' | 'b']++
    expect(Math.abs(counts.a - counts.b)).toBeLessThanOrEqual(1)
  })

  it("serves a caller's reader-waiting turn before that caller's other turns, never before another caller's", async () => {
    const limiter = new RateLimiter(80 * KiB) // a burst of 20 KiB
    await limiter.take(20 * KiB) // the burst is spent: every call below waits in line
    const granted: string[] = []
    const take = (name: string, caller: string, readerWaiting: boolean) =>
      limiter.take(20 * KiB, undefined, { caller, readerWaiting }).then(() => granted.push(name))
    const turns = [
      take('a, background', 'a', false),
      take('b, background', 'b', false),
      take('b, reader', 'b', true), // goes before b's own background, not before a's
      take('c, reader', 'c', true), // c has no background here: it waits its turn like anyone
      take('a, reader', 'a', true),
    ]
    await Promise.all(turns)
    expect(granted).toEqual(['a, reader', 'a, background', 'b, reader', 'b, background', 'c, reader'])
  })

  it("serves a caller's reader turns for the same file from the earliest bytes on, never before another caller's", async () => {
    const limiter = new RateLimiter(80 * KiB) // a burst of 20 KiB
    await limiter.take(20 * KiB) // the burst is spent: every call below waits in line
    const granted: string[] = []
    const take = (name: string, caller: string, file: string, offset: number) =>
      limiter
        .take(20 * KiB, undefined, { caller, readerWaiting: true, file, offset })
        .then(() => granted.push(name))
    const turns = [
      take('a, chunk 3', 'a', 'film', 3 << 20),
      take('b, chunk 2', 'b', 'film', 2 << 20),
      take('a, chunk 2', 'a', 'film', 2 << 20), // before a's chunk 3
      take('a, other file', 'a', 'song', 0), // another file: in line like any
      take('b, chunk 1', 'b', 'film', 1 << 20), // before b's chunk 2, not before a's turns
    ]
    await Promise.all(turns)
    expect(granted).toEqual(['a, chunk 2', 'a, chunk 3', 'b, chunk 1', 'b, chunk 2', 'a, other file'])
  })

  it('lets an aborted caller go at once, and serves the next in line', async () => {
    const limiter = new RateLimiter(4 * KiB) // a burst of 1 KiB
    await limiter.take(1 * KiB)
    const abort = new AbortController()
    const first = limiter.take(1000 * KiB, abort.signal).then(() => 'let go')
    const second = limiter.take(1 * KiB)
    abort.abort()
    // At once: before the event loop turns (setImmediate), so before any timer of the bucket could grant it.
    const turned = new Promise((resolve) => setImmediate(() => resolve('the loop turned first')))
    expect(await Promise.race([first, turned])).toBe('let go')
    await second // within a quarter second: the aborted caller's 1,000 KiB were never taken
    const order: string[] = []
    await Promise.all([
      limiter.take(1 * KiB).then(() => order.push('third')),
      limiter.take(1 * KiB).then(() => order.push('fourth')),
    ])
    expect(order).toEqual(['third', 'fourth'])
  })
})
