import { describe, expect, it } from 'vitest'
import { AppSessions, TICKET_SECONDS } from '../../peer/src/daemon/app-sessions.ts'

describe('the web app’s tickets and sessions', () => {
  it('spends a ticket once, within its 60 s, for a session the app knows', () => {
    let now = 1_000_000
    const sessions = new AppSessions(() => now)
    const ticket = sessions.ticket()
    const session = sessions.spend(ticket)
    expect(sessions.holds(session)).toBe(true)
    expect(sessions.spend(ticket)).toBeUndefined()
    const late = sessions.ticket()
    now += TICKET_SECONDS * 1000 + 1
    expect(sessions.spend(late)).toBeUndefined()
  })

  it('knows no made-up ticket or session, and keeps a bounded number of either', () => {
    const sessions = new AppSessions()
    expect(sessions.spend('made-up')).toBeUndefined()
    expect(sessions.spend(null)).toBeUndefined()
    expect(sessions.holds('made-up')).toBe(false)
    expect(sessions.holds('')).toBe(false)
    const first = sessions.ticket()
    for (let i = 0; i < 1000; i++) sessions.ticket()
    // Pushed out by newer ones: a flood of tickets cannot grow the daemon's memory.
    expect(sessions.spend(first)).toBeUndefined()
  })
})
