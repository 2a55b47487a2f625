import { afterAll, describe, expect, it } from 'vitest'
import { fileEntry } from './directory-app.ts'
import { sleepUntil } from './peer-process.ts'

/** A running directory reached over HTTP, started with these settings (env vars), stopped after use. */
export type StartDirectory = (
  env: Record<string, string>,
) => Promise<{ url: string; stop: () => Promise<unknown> }>

/**
 * The directory's API behaviours that must hold on every runtime and storage backend, checked over real
 * HTTP against a real process (Node) or real workerd (`wrangler dev`), in real time: lock-outs, members-only
 * reads, body limits and races. The in-process suites (tests/directory/) check the same against the app
 * with a clock they move; this is what keeps the Workers build honest too.
 */
export function describeDirectoryApi(label: string, start: StartDirectory) {
  const running: { stop: () => Promise<unknown> }[] = []
  afterAll(async () => {
    await Promise.all(running.map((d) => d.stop()))
  })
  const directory = async (env: Record<string, string>) => {
    const started = await start(env)
    running.push(started)
    const call = (
      path: string,
      init: { method?: string; token?: string; json?: unknown; body?: string } = {},
    ) =>
      fetch(`${started.url}${path}`, {
        method: init.method ?? 'GET',
        headers: {
          ...(init.json !== undefined || init.body !== undefined
            ? { 'content-type': 'application/json' }
            : {}),
          ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        },
        body: init.body ?? (init.json !== undefined ? JSON.stringify(init.json) : undefined),
      })
    const login = (username: string, password = `password of ${username}`, port = 50071) =>
      call('/v1/login', { method: 'POST', json: { username, password, url: `http://127.0.0.1:${port}` } })
    const tokenOf = async (username: string) => {
      const response = await login(username)
      expect(response.status, await response.clone().text()).toBe(200)
      return ((await response.json()) as { token: string }).token
    }
    return { call, login, tokenOf }
  }

  // Each test starts its own directory (wrangler dev takes seconds to be ready).
  const timeout = 120_000
  describe(`the directory API on ${label}`, () => {
    it(
      'locks a name out after its failures, for twice as long each round, then lets the right password in',
      async () => {
        const { login } = await directory({ LOGIN_MAX_FAILURES: '2', LOGIN_LOCK_SECONDS: '2' })
        expect((await login('lou')).status).toBe(200)
        const round = async () => {
          for (let i = 0; i < 2; i++) expect((await login('lou', 'not the password')).status).toBe(401)
          const locked = await login('lou')
          expect(locked.status).toBe(429)
          expect((await locked.json()).error.code).toBe('too_many_attempts')
          const seconds = Number(locked.headers.get('retry-after'))
          await sleepUntil(Date.now() + seconds * 1000 + 100)
          return seconds
        }
        const first = await round()
        const second = await round()
        expect(first).toBe(2)
        // Four seconds of lock, rounded up from what is left of it when the answer is made.
        expect(second).toBeGreaterThanOrEqual(3)
        expect((await login('lou')).status).toBe(200)
      },
      timeout,
    )

    it(
      'with READ_REQUIRES_AUTH, refuses search, files and peers without a token; stats stays open',
      async () => {
        const { call, tokenOf } = await directory({ READ_REQUIRES_AUTH: 'true' })
        const token = await tokenOf('member')
        const secret = fileEntry('members only.txt')
        const put = await call('/v1/index', { method: 'PUT', token, json: { files: [secret] } })
        expect(put.status).toBe(200)
        for (const path of ['/v1/search?q=members', `/v1/files/${secret.sha256}`, '/v1/peers']) {
          const anonymous = await call(path)
          expect(anonymous.status, path).toBe(401)
          expect((await anonymous.json()).error.code).toBe('missing_token')
          expect((await call(path, { token })).status, path).toBe(200)
        }
        expect((await call('/v1/stats')).status).toBe(200)
      },
      timeout,
    )

    it(
      'answers 413 to bodies past their limits and stores nothing of them',
      async () => {
        const { call, tokenOf } = await directory({})
        const login = await call('/v1/login', {
          method: 'POST',
          body: JSON.stringify({
            username: 'big',
            password: 'x'.repeat(70 * 1024),
            url: 'http://127.0.0.1:1',
          }),
        })
        expect(login.status).toBe(413)
        expect((await login.json()).error.code).toBeTypeOf('string')
        const token = await tokenOf('writer')
        const huge = JSON.stringify({ files: [fileEntry('a.txt')], padding: 'x'.repeat(33 * 1024 * 1024) })
        const put = await call('/v1/index', { method: 'PUT', token, body: huge })
        expect(put.status).toBe(413)
        const peers = (await (await call('/v1/peers')).json()) as {
          peers: { username: string; files: number }[]
        }
        expect(peers.peers.map((p) => [p.username, p.files])).toEqual([['writer', 0]])
      },
      timeout,
    )

    it(
      'keeps holders that disagree on a content’s metadata apart (most live holders first) and refuses impossible sizes',
      async () => {
        const { call, tokenOf } = await directory({})
        const honest = fileEntry('variant.bin', 'one content')
        const forged = { ...honest, manifest: 'f'.repeat(64) }
        for (const [name, file] of [
          ['honest1', honest],
          ['honest2', honest],
          ['forger', forged],
        ] as const) {
          const token = await tokenOf(name)
          expect((await call('/v1/index', { method: 'PUT', token, json: { files: [file] } })).status).toBe(
            200,
          )
        }
        type Found = { manifest: string; sources: { username: string }[] }
        const rows = (found: Found[]) =>
          found.map((r) => `${r.manifest}:${r.sources.map((s) => s.username).sort()}`)
        const expected = [`${honest.manifest}:honest1,honest2`, `${forged.manifest}:forger`]
        for (const query of ['q=variant.bin', `sha256=${honest.sha256}`]) {
          const { results } = (await (await call(`/v1/search?${query}`)).json()) as { results: Found[] }
          expect(rows(results), query).toEqual(expected)
        }
        const file = (await (await call(`/v1/files/${honest.sha256}`)).json()) as Found & {
          variants: Found[]
        }
        expect(rows([file])).toEqual(expected.slice(0, 1))
        expect(rows(file.variants)).toEqual(expected)
        const token = await tokenOf('bloater')
        const bloated = { ...honest, size: Number.MAX_SAFE_INTEGER }
        expect((await call('/v1/index', { method: 'PUT', token, json: { files: [bloated] } })).status).toBe(
          400,
        )
      },
      timeout,
    )

    it(
      'races: two first logins of one name with different passwords, exactly one account wins',
      async () => {
        const { login } = await directory({})
        const answers = await Promise.all([login('twin', 'password one'), login('twin', 'password two')])
        expect(answers.map((r) => r.status).sort()).toEqual([200, 401])
        const winner = answers[0]?.status === 200 ? 'password one' : 'password two'
        expect((await login('twin', winner)).status).toBe(200)
      },
      timeout,
    )

    it(
      'races: PUT and PATCH of one index at once end as one of their orders, never a mix',
      async () => {
        const { call, tokenOf } = await directory({})
        const token = await tokenOf('racer')
        const [a, b, c] = [fileEntry('a.bin'), fileEntry('b.bin'), fileEntry('c.bin')]
        await call('/v1/index', { method: 'PUT', token, json: { files: [a] } })
        const [put, patch] = await Promise.all([
          call('/v1/index', { method: 'PUT', token, json: { files: [b] } }),
          call('/v1/index', { method: 'PATCH', token, json: { add: [c], remove: [a.sha256] } }),
        ])
        expect([put.status, patch.status]).toEqual([200, 200])
        const names = async (q: string) =>
          ((await (await call(`/v1/search?q=${q}`)).json()) as { results: { name: string }[] }).results.map(
            (r) => r.name,
          )
        const held = [...(await names('a.bin')), ...(await names('b.bin')), ...(await names('c.bin'))].sort()
        // PUT then PATCH: b and c; PATCH then PUT: b alone.
        expect([['b.bin', 'c.bin'], ['b.bin']]).toContainEqual(held)
      },
      timeout,
    )
  })
}
