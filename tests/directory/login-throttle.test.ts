import { afterEach, describe, expect, it } from 'vitest'
import { type DirectoryProcess, postFrom, startDirectoryProcess } from '../support/directory-process.ts'

// Guessing against a real directory process over real sockets: the loopback range gives each client
// its own source address (127.0.0.1 the owner, 127.0.0.2 and up the guessers).
let running: DirectoryProcess | undefined
afterEach(async () => {
  await running?.stop('SIGKILL')
  running = undefined
})

const OWNER = '127.0.0.1'
const GUESSER = '127.0.0.2'
const PASSWORD = 'the owner password'
const peerUrl = 'http://127.0.0.1:50051'

const login = (from: string, password: string, headers?: Record<string, string>) =>
  postFrom(from, `${running?.url}/v1/login`, { username: 'owner', password, url: peerUrl }, { headers })

describe('login throttling under a burst of guesses', () => {
  it('checks at most LOGIN_MAX_FAILURES of 100 concurrent guesses, refuses the right one inside the burst, and lets the owner in from its own address', async () => {
    running = await startDirectoryProcess({ env: { LEASE_SECONDS: '600', LOGIN_MAX_FAILURES: '5' } })
    const first = await login(OWNER, PASSWORD)
    expect(first.status).toBe(200)
    const daemonToken = String(first.body.token)

    let refused = 0
    let markBudgetSpent: () => void = () => {}
    const budgetSpent = new Promise<void>((resolve) => {
      markBudgetSpent = resolve
    })
    const guesses = Array.from({ length: 100 }, (_, i) =>
      login(GUESSER, `wrong guess ${i}`).then((answer) => {
        if (answer.status === 401 && ++refused === 5) markBudgetSpent()
        return answer
      }),
    )
    // The running daemon's heartbeat while the guesses are in flight: a heartbeat is not a login.
    const beat = await postFrom(OWNER, `${running.url}/v1/heartbeat`, {}, { token: daemonToken })
    expect(beat.status).toBe(200)
    await Promise.race([budgetSpent, Promise.all(guesses)])
    // The right password from the guessing address, sent once five guesses were checked: refused.
    const rightInBurst = await login(GUESSER, PASSWORD)
    const answers = await Promise.all(guesses)

    const checked = answers.filter((a) => a.status === 401)
    const throttled = answers.filter((a) => a.status === 429)
    expect(checked.length).toBe(5)
    expect(throttled.length).toBe(95)
    expect(
      throttled.every((a) => a.body.error?.code === 'too_many_attempts' && Number(a.retryAfter) > 0),
    ).toBe(true)
    expect(rightInBurst.status).toBe(429)

    // The owner, from its own address, right after: in. Its daemon's session kept renewing.
    expect((await login(OWNER, PASSWORD)).status).toBe(200)
    expect((await postFrom(OWNER, `${running.url}/v1/heartbeat`, {}, { token: daemonToken })).status).toBe(
      200,
    )
  }, 60_000)

  it('does not take X-Forwarded-For from a client unless TRUST_PROXY says so', async () => {
    running = await startDirectoryProcess({ env: { LOGIN_MAX_FAILURES: '3' } })
    expect((await login(OWNER, PASSWORD)).status).toBe(200)
    const spoofed = []
    for (let i = 0; i < 6; i++)
      spoofed.push((await login(GUESSER, 'wrong guess', { 'x-forwarded-for': `198.51.100.${i}` })).status)
    expect(spoofed).toEqual([401, 401, 401, 429, 429, 429])
    await running.stop('SIGKILL')

    // Behind a proxy the operator trusts, the address it appends last is the client's.
    running = await startDirectoryProcess({ env: { LOGIN_MAX_FAILURES: '3', TRUST_PROXY: 'true' } })
    expect((await login(OWNER, PASSWORD, { 'x-forwarded-for': '203.0.113.9' })).status).toBe(200)
    for (let i = 0; i < 3; i++)
      expect((await login(OWNER, 'wrong guess', { 'x-forwarded-for': '203.0.113.66' })).status).toBe(401)
    expect((await login(OWNER, PASSWORD, { 'x-forwarded-for': '203.0.113.66' })).status).toBe(429)
    // A client's own X-Forwarded-For comes first; the proxy's entry, last, is what counts.
    expect((await login(OWNER, PASSWORD, { 'x-forwarded-for': '203.0.113.66, 203.0.113.9' })).status).toBe(
      200,
    )
  }, 60_000)

  it('bounds a guesser spread over many addresses by the name’s own budget, yet lets in addresses the owner used before', async () => {
    running = await startDirectoryProcess({
      env: { LOGIN_MAX_FAILURES: '2', LOGIN_MAX_FAILURES_PER_NAME: '6' },
    })
    expect((await login(OWNER, PASSWORD)).status).toBe(200)
    const statuses: number[] = []
    for (let host = 10; host < 20; host++)
      for (let i = 0; i < 2; i++) statuses.push((await login(`127.0.1.${host}`, 'wrong guess')).status)
    expect(statuses.filter((s) => s === 401).length).toBe(6)
    expect(statuses.filter((s) => s !== 401).every((s) => s === 429)).toBe(true)
    // A new address is refused even with the right password until the name's lock runs out...
    const fresh = await login('127.0.1.99', PASSWORD)
    expect(fresh.status).toBe(429)
    expect(Number(fresh.retryAfter)).toBeGreaterThan(0)
    // ...but the address the owner logged in from before keeps its own budget.
    expect((await login(OWNER, PASSWORD)).status).toBe(200)
  }, 60_000)
})
