import { describe, expect, it } from 'vitest'
import {
  type Admission,
  ASK_BURST_MS,
  EARLY_PENALTY_MS,
  QUEUE_GRACE_MS,
  retryAfterMs,
  SLOT_HOLD_MS,
  SLOT_PROGRESS_BYTES,
  SLOT_STALL_MS,
  type SlotTicket,
  UploadSlots,
} from '../../peer/src/serve/upload-slots.ts'

/** Upload slots on a clock the test moves. */
function slotsAt(options: { slots: number; maxQueue?: number; friends?: string[] }) {
  const clock = { now: 0 }
  const slots = new UploadSlots({ maxQueue: 256, ...options, now: () => clock.now })
  return { slots, clock }
}

const ticketOf = (admission: Admission): SlotTicket => {
  if (!('ticket' in admission)) throw new Error(`not admitted: ${JSON.stringify(admission)}`)
  return admission.ticket
}
const queuedOf = (admission: Admission) => {
  if (!('queued' in admission)) throw new Error(`not queued: ${JSON.stringify(admission)}`)
  return admission.queued
}
const order = (slots: UploadSlots) => slots.state().queued.map((q) => q.username)

describe('UploadSlots', () => {
  it('serves one account per slot, many calls each; queues the next, first come first served', () => {
    const { slots, clock } = slotsAt({ slots: 1 })
    const first = ticketOf(slots.admit('alice'))
    const second = ticketOf(slots.admit('alice')) // the same customer's second call
    expect(queuedOf(slots.admit('bob'))).toEqual({
      place: 1,
      waiting: 1,
      retryAfterMs: retryAfterMs(1),
      delayMs: 0,
    })
    expect(queuedOf(slots.admit('carol')).place).toBe(2)
    first.sent(100)
    second.sent(50)
    expect(slots.state()).toEqual({
      slots: 1,
      active: [{ username: 'alice', bytes: 150 }],
      queued: [
        { username: 'bob', position: 1 },
        { username: 'carol', position: 2 },
      ],
    })
    // Its calls over, alice holds the slot a while: her next call is no newcomer.
    first.release()
    second.release()
    second.release() // twice is once
    clock.now += SLOT_HOLD_MS - 1
    ticketOf(slots.admit('alice')).release()
    clock.now += SLOT_HOLD_MS
    // The slot is bob's: carol, asking on time, still waits; bob gets it when he asks.
    clock.now = Math.max(clock.now, retryAfterMs(2))
    expect(queuedOf(slots.admit('carol')).place).toBe(2)
    ticketOf(slots.admit('bob')).release()
    expect(slots.state().active.map((a) => a.username)).toEqual(['bob'])
    expect(order(slots)).toEqual(['carol'])
  })

  it('keeps a freed slot for the head of the queue, not for a newcomer', () => {
    const { slots, clock } = slotsAt({ slots: 1 })
    ticketOf(slots.admit('alice')).release()
    queuedOf(slots.admit('bob'))
    clock.now += SLOT_HOLD_MS
    expect(queuedOf(slots.admit('dave')).place).toBe(2)
    clock.now += retryAfterMs(1)
    ticketOf(slots.admit('bob'))
  })

  it('lets a friend skip the queue, not the slots: served next, ahead of all who wait', () => {
    const { slots, clock } = slotsAt({ slots: 1, friends: ['Frida'] })
    const alice = ticketOf(slots.admit('alice'))
    for (const name of ['bob', 'carol', 'dave']) queuedOf(slots.admit(name))
    // The slot is taken: the friend waits too, first in line.
    expect(queuedOf(slots.admit('frida')).place).toBe(1)
    expect(order(slots)).toEqual(['frida', 'bob', 'carol', 'dave'])
    alice.release()
    clock.now += SLOT_HOLD_MS
    ticketOf(slots.admit('frida'))
    expect(order(slots)).toEqual(['bob', 'carol', 'dave'])
  })

  it('serves a friend at once where a slot is free, whoever waits for the others', () => {
    const { slots } = slotsAt({ slots: 2, friends: ['frida'] })
    ticketOf(slots.admit('alice'))
    ticketOf(slots.admit('frida'))
    expect(queuedOf(slots.admit('bob')).place).toBe(1)
  })

  it('moves an account that asks before its time to the back, slows it, and keeps the others in order', () => {
    const { slots, clock } = slotsAt({ slots: 1 })
    ticketOf(slots.admit('alice'))
    for (const name of ['bob', 'carol', 'dave']) queuedOf(slots.admit(name))
    // A burst of calls is one ask: no penalty within ASK_BURST_MS.
    clock.now += ASK_BURST_MS - 1
    expect(queuedOf(slots.admit('bob'))).toMatchObject({ place: 1, delayMs: 0 })
    expect(order(slots)).toEqual(['bob', 'carol', 'dave'])
    // Past the burst and before its time: to the back, told to wait twice as long, answered late.
    clock.now += 1
    const early = queuedOf(slots.admit('bob'))
    expect(early).toEqual({
      place: 3,
      waiting: 3,
      retryAfterMs: 2 * retryAfterMs(3),
      delayMs: EARLY_PENALTY_MS,
    })
    expect(order(slots)).toEqual(['carol', 'dave', 'bob'])
    // Again too soon (a tight loop): longer still; the others keep their order.
    clock.now += ASK_BURST_MS
    expect(queuedOf(slots.admit('bob')).retryAfterMs).toBe(4 * retryAfterMs(3))
    expect(order(slots)).toEqual(['carol', 'dave', 'bob'])
  })

  it('gives up the place of an account that stops asking, and refuses past a full queue', () => {
    const { slots, clock } = slotsAt({ slots: 1, maxQueue: 2 })
    ticketOf(slots.admit('alice'))
    queuedOf(slots.admit('bob'))
    queuedOf(slots.admit('carol'))
    expect(slots.admit('dave')).toEqual({ full: { maxQueue: 2 } })
    // carol keeps asking on time; bob never asks again.
    while (clock.now < retryAfterMs(1) + QUEUE_GRACE_MS) {
      expect(order(slots)).toEqual(['bob', 'carol'])
      clock.now += retryAfterMs(2)
      queuedOf(slots.admit('carol'))
    }
    expect(order(slots)).toEqual(['carol'])
  })

  it('takes the slot of an account whose calls stall (read nothing) and gives it to the next', () => {
    const { slots, clock } = slotsAt({ slots: 1 })
    const stalled = ticketOf(slots.admit('mallory'))
    queuedOf(slots.admit('bob'))
    // Progress keeps it: 256 KiB within each stall time.
    clock.now += SLOT_STALL_MS - 1
    stalled.sent(SLOT_PROGRESS_BYTES)
    clock.now += SLOT_STALL_MS - 1
    queuedOf(slots.admit('bob'))
    expect(slots.state().active.map((a) => a.username)).toEqual(['mallory'])
    // Then nothing for a whole stall time: the slot is bob's, though mallory's call is still open.
    clock.now += 1
    ticketOf(slots.admit('bob'))
    expect(slots.state().active.map((a) => a.username)).toEqual(['bob'])
    stalled.release() // its end changes nothing for the others
    expect(queuedOf(slots.admit('mallory')).place).toBe(1)
  })
})
