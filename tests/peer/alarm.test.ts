import { expect, it } from 'vitest'
import { Alarm } from '../../peer/src/daemon/alarm.ts'

/** A sleep, and whether it has ended (looked at after the microtasks queued so far have run). */
function watched(sleep: Promise<void>) {
  let done = false
  void sleep.then(() => {
    done = true
  })
  const ended = async () => {
    await new Promise((r) => setImmediate(r))
    return done
  }
  return { ended, sleep }
}

it('ends a sleep at a wake, and keeps a wake that came while nobody slept for the next sleep only', async () => {
  const alarm = new Alarm()
  const first = watched(alarm.sleep(60_000))
  expect(await first.ended()).toBe(false)
  alarm.wake()
  expect(await first.ended()).toBe(true)
  // Woken while busy (a loop's request in flight): the next sleep ends at once, the one after does not.
  alarm.wake()
  expect(await watched(alarm.sleep(60_000)).ended()).toBe(true)
  const third = watched(alarm.sleep(60_000))
  expect(await third.ended()).toBe(false)
  alarm.wake()
  expect(await third.ended()).toBe(true)
})
