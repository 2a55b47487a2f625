import { networkInterfaces } from 'node:os'
import { createClient } from '@libsql/client'
import { afterEach, describe, expect, it } from 'vitest'
import { type DirectoryProcess, postFrom, startDirectoryProcess } from '../support/directory-process.ts'
import { sleepUntil } from '../support/peer-process.ts'
import { mustSkip } from '../support/requirements.ts'

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

// Whether this machine has IPv6 loopback (a container may have it turned off).
const noIpv6 = mustSkip(
  'IPV6',
  networkInterfaces().lo?.some((address) => address.address === '::1')
    ? undefined
    : 'no ::1 on the loopback interface (IPv6 turned off: sysctl net.ipv6.conf.lo.disable_ipv6=0)',
)

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

  it('doubles the name’s lock-out for new addresses at each further one', async () => {
    const LOCK = 3
    running = await startDirectoryProcess({
      env: { LOGIN_MAX_FAILURES: '2', LOGIN_MAX_FAILURES_PER_NAME: '4', LOGIN_LOCK_SECONDS: String(LOCK) },
    })
    expect((await login(OWNER, PASSWORD)).status).toBe(200)
    // One guess per address, so no address's own budget runs out: only the name's shared one does.
    let host = 10
    const guess = () => login(`127.0.2.${host++}`, 'wrong guess')
    const lockOut = async () => {
      let answer = await guess()
      while (answer.status === 401) answer = await guess()
      expect(answer.status).toBe(429)
      return Number(answer.retryAfter)
    }
    const guessesBefore = host
    const first = await lockOut()
    expect(host - guessesBefore).toBe(5) // four checked, the fifth refused
    expect(first).toBeGreaterThan(0)
    expect(first).toBeLessThanOrEqual(LOCK)
    // Waited out (a guess inside it is refused, and counts for nothing), the next round locks for twice as long.
    await sleepUntil(Date.now() + first * 1000)
    let answer = await guess()
    while (answer.status === 429) {
      await sleepUntil(Date.now() + 200)
      answer = await guess()
    }
    expect(answer.status).toBe(401)
    const second = await lockOut()
    expect(second).toBeGreaterThan(LOCK)
    expect(second).toBeLessThanOrEqual(2 * LOCK)
    // The owner's own address was never part of it.
    expect((await login(OWNER, PASSWORD)).status).toBe(200)
  }, 60_000)

  it.skipIf(noIpv6)(
    'counts IPv6 clients and IPv4 ones on a dual-stack socket by their own address',
    async () => {
      // Listening on :: takes ::1 and, as ::ffff:127.0.0.x, every IPv4 loopback address.
      running = await startDirectoryProcess({ host: '::', env: { LOGIN_MAX_FAILURES: '3' } })
      const port = running.port
      const v4 = `http://127.0.0.1:${port}/v1/login`
      const v6 = `http://[::1]:${port}/v1/login`
      const loginAt = (url: string, from: string, password: string) =>
        postFrom(from, url, { username: 'owner', password, url: peerUrl })
      expect((await loginAt(v4, OWNER, PASSWORD)).status).toBe(200)
      const statuses = async (url: string, from: string) => {
        const seen: number[] = []
        for (let i = 0; i < 4; i++) seen.push((await loginAt(url, from, 'wrong guess')).status)
        return seen
      }
      // The IPv6 guesser spends its own budget, then the IPv4 one its own: neither counts against the other.
      expect(await statuses(v6, '::1')).toEqual([401, 401, 401, 429])
      expect(await statuses(v4, GUESSER)).toEqual([401, 401, 401, 429])
      expect((await loginAt(v6, '::1', PASSWORD)).status).toBe(429)
      expect((await loginAt(v4, OWNER, PASSWORD)).status).toBe(200)
      // Kept under the keys the README names: an IPv6 address by its /64, a mapped IPv4 one as IPv4.
      const db = createClient({ url: running.dbUrl })
      try {
        const rows = await db.execute(
          "SELECT address FROM login_attempts WHERE username = 'owner' AND address <> '*' ORDER BY address",
        )
        expect(rows.rows.map((row) => String(row.address))).toEqual(['0:0:0:0::/64', OWNER, GUESSER])
      } finally {
        db.close()
      }
    },
    60_000,
  )
})
