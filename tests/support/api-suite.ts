import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose'
import { afterAll, describe, expect, it } from 'vitest'
import { fileEntry, sha } from './directory-app.ts'
import { postFrom } from './directory-process.ts'
import { requestExpectingContinue } from './expect-continue.ts'
import { fetchResending } from './fetch-resending.ts'
import { sleepUntil } from './peer-process.ts'

/** A running directory reached over HTTP, started with these settings (env vars), stopped after use. */
export type StartDirectory = (
  env: Record<string, string>,
) => Promise<{ url: string; stop: () => Promise<unknown> }>

/**
 * The directory's API behaviours that must hold on every runtime and storage backend, checked over real
 * HTTP against a real process (Node) or real workerd (as `wrangler dev` runs it), in real time: lock-outs, members-only
 * reads, body limits and races. A client's address is the socket's on Node and CF-Connecting-IP on
 * Workers, which workerd's local entry sets from the socket too (the tests send none), so one test binding 127.0.0.2 holds on both. The in-process suites (tests/directory/) check the same against the app
 * with a clock they move; this is what keeps the Workers build honest too.
 */
export function describeDirectoryApi(label: string, start: StartDirectory) {
  // Starts, not started directories: one still starting when its test gave up is stopped too.
  const running: Promise<{ stop: () => Promise<unknown> }>[] = []
  afterAll(async () => {
    await Promise.allSettled(running.map(async (starting) => (await starting).stop()))
  })
  const directory = async (env: Record<string, string>) => {
    const starting = start(env)
    running.push(starting)
    const started = await starting
    // A request goes out on a kept-alive connection, which the directory (workerd most of all) may
    // close as idle just then on a loaded machine: it meets a reset, not an answer, and is sent once
    // more, on another connection, as any client would (the directory never read it). A directory that
    // resets instead of answering fails both.
    const call = (
      path: string,
      init: { method?: string; token?: string; json?: unknown; body?: string } = {},
    ) =>
      fetchResending(`${started.url}${path}`, {
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
    const tokenOf = async (username: string, port?: number) => {
      const response = await login(username, undefined, port)
      expect(response.status, await response.clone().text()).toBe(200)
      return ((await response.json()) as { token: string }).token
    }
    return { url: started.url, call, login, tokenOf }
  }

  // Each test starts its own directory, so the tests run at once (up to the config's maxConcurrency):
  // most of a test's time is waiting on its directory (workerd takes a second to be ready, lock-outs
  // last seconds), and one test's directory never sees another's requests.
  // Bounds a hung test, nothing more: with two runs side by side, the tests making 40 accounts took
  // over two minutes on workerd (each login a PBKDF2 of 100,000 rounds).
  const timeout = 300_000
  describe(`the directory API on ${label}`, { concurrent: true }, () => {
    it(
      'locks a name out after its failures, for twice as long each round, then lets the right password in',
      async () => {
        // Locks of 5 and 10 s: under load (four of these tests at once on workerd, beside other files) a
        // login waited its turn long enough that a 2 s lock had ended before the locked login was checked.
        const { login } = await directory({ LOGIN_MAX_FAILURES: '2', LOGIN_LOCK_SECONDS: '5' })
        expect((await login('lou')).status).toBe(200)
        // The lock's length, told from Retry-After: what is left of it when the answer is made, rounded
        // up, so between the length less the seconds since the failure that locked began and the length.
        const round = async (lockSeconds: number) => {
          expect((await login('lou', 'not the password')).status).toBe(401)
          const lockingSent = Date.now()
          expect((await login('lou', 'not the password')).status).toBe(401)
          const locked = await login('lou')
          const since = (Date.now() - lockingSent) / 1000
          expect(locked.status).toBe(429)
          expect((await locked.json()).error.code).toBe('too_many_attempts')
          const seconds = Number(locked.headers.get('retry-after'))
          expect(seconds).toBeLessThanOrEqual(lockSeconds)
          expect(seconds).toBeGreaterThanOrEqual(Math.floor(lockSeconds - since))
          await sleepUntil(Date.now() + seconds * 1000 + 100)
        }
        await round(5)
        await round(10)
        expect((await login('lou')).status).toBe(200)
      },
      timeout,
    )

    it(
      'checks at most LOGIN_MAX_FAILURES of a concurrent burst from one address, and the owner still logs in from another',
      async () => {
        const { url, login } = await directory({ LOGIN_MAX_FAILURES: '3' })
        expect((await login('owner')).status).toBe(200)
        const body = (password: string) => ({ username: 'owner', password, url: 'http://127.0.0.1:50071' })
        const burst = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            postFrom('127.0.0.2', `${url}/v1/login`, body(`wrong guess ${i}`)),
          ),
        )
        const unexpected = burst.filter((a) => a.status !== 401 && a.status !== 429)
        expect(unexpected, JSON.stringify(unexpected[0])).toEqual([])
        expect(burst.filter((a) => a.status === 401).length).toBe(3)
        expect(burst.filter((a) => a.status === 429).length).toBe(27)
        expect((await postFrom('127.0.0.2', `${url}/v1/login`, body('password of owner'))).status).toBe(429)
        expect((await login('owner')).status).toBe(200)
      },
      timeout,
    )

    it(
      'with READ_REQUIRES_AUTH: no sign-up and no count for a stranger; the operator makes and removes accounts with the admin calls',
      async () => {
        const admin = 'the operator admin secret'
        const { call, login } = await directory({ READ_REQUIRES_AUTH: 'true', ADMIN_TOKEN: admin })
        const signup = await login('member')
        expect(signup.status).toBe(403)
        expect((await signup.json()).error.code).toBe('registration_closed')
        for (const path of ['/v1/stats', '/metrics']) expect((await call(path)).status, path).toBe(401)
        expect(await (await call('/')).text()).not.toMatch(/id="stat-peers">\d/)

        const account = { username: 'member', password: 'password of member' }
        const forged = await call('/v1/admin/users', { method: 'POST', token: `${admin}!`, json: account })
        expect(forged.status).toBe(401)
        expect((await forged.json()).error.code).toBe('invalid_admin_token')
        const bad = await call('/v1/admin/users', {
          method: 'POST',
          token: admin,
          json: { username: '../x' },
        })
        expect(bad.status).toBe(400)
        const made = await call('/v1/admin/users', { method: 'POST', token: admin, json: account })
        expect(made.status).toBe(201)
        expect((await made.json()).user).toMatchObject({ username: 'member', state: 'down', files: 0 })
        const twice = await call('/v1/admin/users', { method: 'POST', token: admin, json: account })
        expect(twice.status).toBe(409)

        const signedIn = await login('member')
        expect(signedIn.status).toBe(200)
        const token = ((await signedIn.json()) as { token: string }).token
        const secret = fileEntry('members only.txt')
        const put = await call('/v1/index', { method: 'PUT', token, json: { files: [secret] } })
        expect(put.status).toBe(200)
        for (const path of ['/v1/search?q=members', `/v1/files/${secret.sha256}`, '/v1/peers', '/v1/stats']) {
          const anonymous = await call(path)
          expect(anonymous.status, path).toBe(401)
          expect((await anonymous.json()).error.code).toBe('missing_token')
          expect((await call(path, { token })).status, path).toBe(200)
        }
        const listed = await (await call('/v1/admin/users', { token: admin })).json()
        expect(listed).toMatchObject({ total: 1, users: [{ username: 'member', state: 'up', files: 1 }] })

        const removed = await call('/v1/admin/users/member', { method: 'DELETE', token: admin })
        expect(await removed.json()).toEqual({ username: 'member', removed: true })
        expect((await call('/v1/admin/users/member', { method: 'DELETE', token: admin })).status).toBe(404)
        const revoked = await call('/v1/heartbeat', { method: 'POST', token })
        expect(revoked.status).toBe(401)
        expect((await login('member')).status).toBe(403)
        expect(await (await call('/v1/admin/users', { token: admin })).json()).toEqual({
          users: [],
          total: 0,
        })
      },
      timeout,
    )

    it(
      'answers 413 to bodies past their limits and stores nothing of them',
      async () => {
        const { url, call, tokenOf } = await directory({})
        // Each body is made before the request ahead of it, so no connection sits idle while 33 MiB of
        // JSON is made.
        const big = JSON.stringify({
          username: 'big',
          password: 'x'.repeat(70 * 1024),
          url: 'http://127.0.0.1:1',
        })
        const huge = JSON.stringify({ files: [fileEntry('a.txt')], padding: 'x'.repeat(33 * 1024 * 1024) })
        // Sent as curl sends a big body, waiting for 100 Continue (see requestExpectingContinue).
        const json = { 'content-type': 'application/json' }
        const login = await requestExpectingContinue(`${url}/v1/login`, {
          method: 'POST',
          headers: json,
          body: big,
        })
        expect(login.status).toBe(413)
        expect(JSON.parse(login.text).error.code).toBeTypeOf('string')
        const token = await tokenOf('writer')
        const put = await requestExpectingContinue(`${url}/v1/index`, {
          method: 'PUT',
          headers: { ...json, authorization: `Bearer ${token}` },
          body: huge,
        })
        expect(put.status).toBe(413)
        const peers = (await (await call('/v1/peers')).json()) as {
          peers: { username: string; files: number }[]
        }
        expect(peers.peers.map((p) => [p.username, p.files])).toEqual([['writer', 0]])
      },
      timeout,
    )

    it(
      'lists each peer with the key it logged in with (null for plaintext), in every listing, and names it in call tokens',
      async () => {
        const { call } = await directory({})
        const key = `sha256/${'A'.repeat(42)}Q`
        const other = `sha256/${'B'.repeat(42)}Q`
        const loginAs = async (username: string, json: Record<string, unknown>) => {
          const response = await call('/v1/login', {
            method: 'POST',
            json: { username, password: `password of ${username}`, ...json },
          })
          return {
            status: response.status,
            body: (await response.json()) as { token: string; peer: unknown },
          }
        }
        // A key belongs to a TLS url only, and has its one shape.
        expect((await loginAs('vera', { url: 'http://127.0.0.1:50073', key })).status).toBe(400)
        expect((await loginAs('vera', { url: 'https://127.0.0.1:50073', key: 'sha256/short' })).status).toBe(
          400,
        )
        const vera = await loginAs('vera', { url: 'https://127.0.0.1:50073', key })
        expect(vera.body.peer).toMatchObject({ url: 'https://127.0.0.1:50073', key })
        const plain = await loginAs('paul', { url: 'http://127.0.0.1:50074' })
        expect(plain.body.peer).toMatchObject({ key: null })
        const file = fileEntry('keyed.txt')
        for (const who of [vera, plain]) {
          const put = await call('/v1/index', {
            method: 'PUT',
            token: who.body.token,
            json: { files: [file] },
          })
          expect(put.status).toBe(200)
        }
        const byUser = (sources: { username: string; key: string | null }[]) =>
          Object.fromEntries(sources.map((s) => [s.username, s.key]))
        const searched = await (await call('/v1/search?q=keyed')).json()
        expect(byUser(searched.results[0].sources)).toEqual({ vera: key, paul: null })
        const hashed = await (await call(`/v1/search?sha256=${file.sha256}`)).json()
        expect(byUser(hashed.results[0].sources)).toEqual({ vera: key, paul: null })
        const found = await (await call(`/v1/files/${file.sha256}`)).json()
        expect(byUser(found.sources)).toEqual({ vera: key, paul: null })
        expect(byUser((await (await call('/v1/peers')).json()).peers)).toEqual({ vera: key, paul: null })
        expect((await (await call('/v1/peers/vera/files')).json()).key).toBe(key)
        expect((await (await call('/v1/peers/paul/files')).json()).key).toBeNull()

        // A call token names the audience's key as listed; a viewer login leaves the key as it is.
        const mint = async (audience: string) => {
          const minted = await call('/v1/call-tokens', {
            method: 'POST',
            token: plain.body.token,
            json: { audience },
          })
          return decodeJwt(((await minted.json()) as { token: string }).token)
        }
        expect(await mint('vera')).toMatchObject({ aud: 'vera', aud_key: key })
        expect((await mint('paul')).aud_key).toBeUndefined()
        expect((await loginAs('vera', {})).status).toBe(200)
        expect((await mint('vera')).aud_key).toBe(key)
        // Vera comes back with another key: listings and tokens name the new one at once.
        await loginAs('vera', { url: 'https://127.0.0.1:50073', key: other })
        const again = await (await call(`/v1/search?sha256=${file.sha256}`)).json()
        expect(byUser(again.results[0].sources)).toEqual({ vera: other, paul: null })
        expect((await mint('vera')).aud_key).toBe(other)
      },
      timeout,
    )

    it(
      'mints a call token for one registered peer, which the directory itself refuses everywhere',
      async () => {
        const { url, call, tokenOf } = await directory({})
        const caller = await tokenOf('caller')
        const callee = await tokenOf('Callee', 50072)
        const mint = (json: unknown, token: string | undefined) =>
          call('/v1/call-tokens', { method: 'POST', token, json })
        const asked = Date.now()
        const minted = await mint({ audience: 'callee' }, caller)
        expect(minted.status).toBe(200)
        const grant = (await minted.json()) as { token: string; expiresAt: string }
        const { payload } = await jwtVerify(
          grant.token,
          createRemoteJWKSet(new URL('/.well-known/jwks.json', url)),
          {
            issuer: 'peerdir-directory',
            algorithms: ['EdDSA'],
          },
        )
        // Addressed to the peer as it registered, scoped to a call, naming the caller and its session.
        expect(payload).toMatchObject({ sub: 'caller', aud: 'Callee', scope: 'peer-call' })
        expect(payload.sid).toBe(decodeJwt(caller).sid)
        expect(Date.parse(grant.expiresAt)).toBe((payload.exp as number) * 1000)
        expect((payload.exp as number) - (payload.iat as number)).toBe(300)
        expect(Date.parse(grant.expiresAt)).toBeGreaterThan(asked)

        for (const [body, token, status, code] of [
          [{ audience: 'nobody' }, caller, 404, 'unknown_peer'],
          [{ audience: '../x' }, caller, 400, 'invalid_request'],
          [{}, caller, 400, 'invalid_request'],
          [{ audience: 'callee' }, undefined, 401, 'missing_token'],
          [{ audience: 'callee' }, grant.token, 401, 'call_token'],
        ] as const) {
          const refused = await mint(body, token)
          expect(refused.status, JSON.stringify(body)).toBe(status)
          expect((await refused.json()).error.code).toBe(code)
        }
        for (const [method, path] of [
          ['PUT', '/v1/index'],
          ['PATCH', '/v1/index'],
          ['POST', '/v1/heartbeat'],
          ['POST', '/v1/logout'],
          ['GET', '/v1/session'],
          ['GET', '/v1/sessions/another-session'],
        ] as const) {
          const json = method === 'GET' ? undefined : path === '/v1/index' ? { files: [] } : {}
          const refused = await call(path, { method, token: grant.token, json })
          expect(refused.status, `${method} ${path}`).toBe(401)
          expect((await refused.json()).error.code).toBe('call_token')
        }

        // The callee asks, with its own session token, whether the caller's session is open (and its peer up).
        const sessionOf = async (sid: string) =>
          (await (await call(`/v1/sessions/${sid}`, { token: callee })).json()) as { open: boolean }
        expect(await sessionOf(payload.sid as string)).toEqual({ open: true, up: true })
        expect(await sessionOf('no-such-session')).toEqual({ open: false, up: false })
        // A call token may ask about its own session only (a relay checks the peers it carries so).
        const asItself = async () =>
          (await (await call(`/v1/sessions/${payload.sid}`, { token: grant.token })).json()) as {
            open: boolean
          }
        expect(await asItself()).toEqual({ open: true, up: true })
        expect((await call('/v1/logout', { method: 'POST', token: caller })).status).toBe(200)
        expect(await sessionOf(payload.sid as string)).toEqual({ open: false, up: false })
        expect(await asItself()).toEqual({ open: false, up: false })
      },
      timeout,
    )

    it(
      'keeps holders that disagree on a content’s metadata apart (most live holders first, each counted), refuses impossible sizes; a young token’s heartbeat signs none',
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
        type Found = { manifest: string; sourceCount: number; sources: { username: string }[] }
        const rows = (found: Found[]) =>
          found.map((r) => `${r.manifest}:${r.sourceCount}:${r.sources.map((s) => s.username).sort()}`)
        const expected = [`${honest.manifest}:2:honest1,honest2`, `${forged.manifest}:1:forger`]
        for (const query of ['q=variant.bin', `sha256=${honest.sha256}`]) {
          const { results } = (await (await call(`/v1/search?${query}`)).json()) as { results: Found[] }
          expect(rows(results), query).toEqual(expected)
        }
        const file = (await (await call(`/v1/files/${honest.sha256}`)).json()) as Found & {
          variants: Found[]
        }
        expect(rows([file])).toEqual(expected.slice(0, 1))
        expect(rows(file.variants)).toEqual(expected)
        expect((await call('/v1/search?q=variant.bin&sources=65')).status).toBe(400)
        const token = await tokenOf('bloater')
        // Early in its token's life a heartbeat renews the lease and signs no new token.
        const beat = await call('/v1/heartbeat', { method: 'POST', token })
        expect(beat.status).toBe(200)
        expect(await beat.json()).toEqual({ expiresAt: expect.any(String), leaseSeconds: 60 })
        const bloated = { ...honest, size: Number.MAX_SAFE_INTEGER }
        expect((await call('/v1/index', { method: 'PUT', token, json: { files: [bloated] } })).status).toBe(
          400,
        )
      },
      timeout,
    )

    it(
      'ranks a content’s variants by networks, not accounts: 40 older accounts from one network with bogus manifests and later leases leave the honest variant second',
      async () => {
        const { url, call, tokenOf } = await directory({})
        const honest = fileEntry('sybil.bin', 'the real content')
        // Sleepers: made before the honest holder, all from one network (127.9.0.0/24).
        const flood: string[] = []
        for (let i = 0; i < 40; i++) {
          const answer = await postFrom('127.9.0.1', `${url}/v1/login`, {
            username: `sleeper${i}`,
            password: 'a sleeper password',
            url: `http://127.9.0.1:${40000 + i}`,
          })
          expect(answer.status).toBe(200)
          flood.push(answer.body.token as string)
        }
        const keeper = await tokenOf('keeper')
        expect(
          (await call('/v1/index', { method: 'PUT', token: keeper, json: { files: [honest] } })).status,
        ).toBe(200)
        for (const [i, token] of flood.entries()) {
          const bogus = { ...honest, manifest: sha(`bogus manifest ${i}`) }
          expect((await call('/v1/index', { method: 'PUT', token, json: { files: [bogus] } })).status).toBe(
            200,
          )
          // A lease that ends after the honest holder's, which alone used to rank a tie first.
          expect((await call('/v1/heartbeat', { method: 'POST', token })).status).toBe(200)
        }
        type Found = { manifest: string }
        const file = (await (await call(`/v1/files/${honest.sha256}`)).json()) as { variants: Found[] }
        const bySearch = (await (await call(`/v1/search?sha256=${honest.sha256}`)).json()) as {
          results: Found[]
        }
        for (const variants of [file.variants, bySearch.results]) {
          expect(variants).toHaveLength(32)
          // First the oldest live account's variant (a sleeper's), then each network's first: the honest one.
          expect(variants[0]?.manifest).toBe(sha('bogus manifest 0'))
          expect(variants[1]?.manifest).toBe(honest.manifest)
        }
      },
      timeout,
    )

    it(
      'ranks a name search so one account cannot fill a page, and a squatter’s fresh account loses a tie on an exact name',
      async () => {
        const { call, tokenOf } = await directory({})
        const put = async (token: string, files: unknown[]) =>
          expect((await call('/v1/index', { method: 'PUT', token, json: { files } })).status).toBe(200)
        // Substring matches published before the honest one: read first in the trigram index's order.
        const early = await tokenOf('early-spammer')
        await put(
          early,
          Array.from({ length: 300 }, (_, i) => fileEntry(`best concert ${String(i).padStart(4, '0')}.mp3`)),
        )
        const keeper = await tokenOf('keeper')
        const wembley = fileEntry('live concert at wembley.mp3')
        const song = { ...fileEntry('song.mp3', 'the real song'), sha256: 'e'.repeat(64) }
        await put(keeper, [wembley, song])
        const spammer = await tokenOf('spammer')
        await put(spammer, [
          ...Array.from({ length: 300 }, (_, i) => fileEntry(`concert ${String(i).padStart(4, '0')}.mp3`)),
          // The same exact name as the keeper's, a content that sorts first by hash.
          { ...fileEntry('song.mp3', 'a squatter'), sha256: '0'.repeat(64) },
        ])
        type Found = { name: string; sha256: string; sources: { username: string }[] }
        const search = async (q: string) =>
          ((await (await call(`/v1/search?q=${encodeURIComponent(q)}`)).json()) as { results: Found[] })
            .results
        const concerts = await search('concert')
        expect(concerts).toHaveLength(50)
        // Three of the spammer's prefix matches, three of the early spammer's substring matches, then
        // the keeper's, found past them, then the rest of the spam.
        expect(concerts.slice(0, 7).map((r) => r.sources[0]?.username)).toEqual([
          ...['spammer', 'spammer', 'spammer'],
          ...['early-spammer', 'early-spammer', 'early-spammer'],
          'keeper',
        ])
        expect(concerts[6]?.name).toBe(wembley.name)
        const songs = await search('song.mp3')
        expect(songs.map((r) => r.sha256)).toEqual([song.sha256, '0'.repeat(64)])
      },
      timeout,
    )

    it(
      'folders: a nested share is found by its folder words and browsed level by level and in pages; hostile paths are refused and store nothing; an old client’s index sits at the top',
      async () => {
        const { call, tokenOf } = await directory({})
        const alice = await tokenOf('alice')
        const album = 'Nightjar Ensemble/Songs from Harrow Lane'
        const disc = `${album}/Disc 1`
        const summer = 'Ünïcode Bänd/Été à Montréal/CD 2'
        const at = (path: string, name: string, size = 1000) => ({
          ...fileEntry(name, `${path}/${name}`, size),
          path,
        })
        const share = [
          at(disc, '01 opening.flac', 100),
          at(disc, '02 the river.flac', 200),
          at(album, 'cover.jpg', 30),
          at('Nightjar Ensemble', 'biography.txt', 4),
          at(summer, 'chanson.flac', 5000),
          // An old client's entry: no path at all.
          fileEntry('readme.txt', 'readme', 1),
        ]
        const put = (token: string, files: unknown[]) =>
          call('/v1/index', { method: 'PUT', token, json: { files } })
        expect((await put(alice, share)).status).toBe(200)
        type Found = { name: string; path: string; sources: { username: string }[] }
        const search = async (q: string) =>
          ((await (await call(`/v1/search?q=${encodeURIComponent(q)}`)).json()) as { results: Found[] })
            .results
        const places = (found: Found[]) => found.map((r) => `${r.path}|${r.name}`).sort()
        expect(places(await search('nightjar harrow'))).toEqual(
          [`${album}|cover.jpg`, `${disc}|01 opening.flac`, `${disc}|02 the river.flac`].sort(),
        )
        expect(places(await search('harrow OPENING'))).toEqual([`${disc}|01 opening.flac`])
        expect(places(await search('ÉTÉ montréal'))).toEqual([`${summer}|chanson.flac`])
        expect(places(await search('Nightjar Ensemble/Songs from Harrow Lane/Disc 1'))).toHaveLength(2)
        expect(places(await search('readme'))).toEqual(['|readme.txt'])

        // Ranked: exact name, name prefix, the whole query in the name, every word in the name, then
        // words across path and name.
        // One account may place at most three results before everyone else's: two accounts share these.
        const bob = await tokenOf('bob', 50072)
        const carol = await tokenOf('carol', 50073)
        const ranked = [
          'harrow lane',
          'harrow lane live.mp3',
          'live at harrow lane.mp3',
          'lane of harrow.mp3',
        ]
        expect(
          (
            await put(
              bob,
              [ranked[0], ranked[3]].map((name) => fileEntry(String(name))),
            )
          ).status,
        ).toBe(200)
        expect(
          (
            await put(
              carol,
              [ranked[1], ranked[2]].map((name) => fileEntry(String(name))),
            )
          ).status,
        ).toBe(200)
        const harrowLane = await search('Harrow Lane')
        expect(harrowLane.slice(0, 4).map((r) => r.name)).toEqual(ranked)
        expect(places(harrowLane.slice(4))).toEqual(places(await search('nightjar harrow')))

        type Level = {
          username: string
          state: string
          path: string
          folders: { name: string; files: number; bytes: number }[]
          files: { name: string; path: string; sha256: string }[]
          cursor?: string
        }
        const browse = async (query: string) => {
          const answer = await call(`/v1/peers/alice/files?${query}`)
          expect(answer.status, query).toBe(200)
          return (await answer.json()) as Level
        }
        const top = await browse('')
        expect(top).toMatchObject({ username: 'alice', state: 'up', path: '' })
        expect(top.folders).toEqual([
          { name: 'Nightjar Ensemble', files: 4, bytes: 334 },
          { name: 'Ünïcode Bänd', files: 1, bytes: 5000 },
        ])
        expect(top.files.map((f) => f.name)).toEqual(['readme.txt'])
        expect(top.cursor).toBeUndefined()
        const artist = await browse(`path=${encodeURIComponent('Nightjar Ensemble')}`)
        expect(artist.folders).toEqual([{ name: 'Songs from Harrow Lane', files: 3, bytes: 330 }])
        expect(artist.files.map((f) => f.name)).toEqual(['biography.txt'])
        const albumLevel = await browse(`path=${encodeURIComponent(album)}`)
        expect(albumLevel.folders).toEqual([{ name: 'Disc 1', files: 2, bytes: 300 }])
        expect(albumLevel.files.map((f) => f.name)).toEqual(['cover.jpg'])
        const discLevel = await browse(`path=${encodeURIComponent(disc)}`)
        expect(discLevel.folders).toEqual([])
        expect(discLevel.files).toEqual([
          { ...share[0], path: disc },
          { ...share[1], path: disc },
        ])
        // Every file of the share, two a page, each once, by path then name.
        const pages: Level[] = []
        let cursor: string | undefined
        do {
          const page = await browse(`recursive=true&limit=2${cursor ? `&cursor=${cursor}` : ''}`)
          expect(page.files.length).toBeLessThanOrEqual(2)
          pages.push(page)
          cursor = page.cursor
        } while (cursor && pages.length < 10)
        expect(pages).toHaveLength(3)
        expect(pages.flatMap((p) => p.files.map((f) => `${f.path}|${f.name}`))).toEqual([
          '|readme.txt',
          'Nightjar Ensemble|biography.txt',
          `${album}|cover.jpg`,
          `${disc}|01 opening.flac`,
          `${disc}|02 the river.flac`,
          `${summer}|chanson.flac`,
        ])
        const below = await browse(`recursive=true&path=${encodeURIComponent(album)}`)
        expect(below.files.map((f) => f.name)).toEqual(['cover.jpg', '01 opening.flac', '02 the river.flac'])

        for (const [path, code] of [
          ['/v1/peers/nobody/files', 'unknown_peer'],
          ['/v1/peers/alice/files?path=Nightjar', 'unknown_folder'],
          [`/v1/peers/alice/files?path=${encodeURIComponent(`${album}/Disc`)}`, 'unknown_folder'],
          ['/v1/peers/alice/files?path=..', 'invalid_request'],
          ['/v1/peers/alice/files?cursor=not-a-cursor', 'invalid_request'],
          ['/v1/peers/alice/files?limit=1001', 'invalid_request'],
        ] as const) {
          const refused = await call(path)
          expect(refused.status, `${path}: ${await refused.clone().text()}`).toBe(
            code === 'invalid_request' ? 400 : 404,
          )
          expect((await refused.json()).error.code, path).toBe(code)
        }

        const hostile = [
          '..',
          'Nightjar Ensemble/../..',
          '/etc',
          'a//b',
          'a/',
          'a\\b',
          'a\u0000b',
          Array.from({ length: 10_000 }, () => 'a').join('/'),
          'x'.repeat(1024 * 1024),
        ]
        for (const path of hostile) {
          const entry = { ...fileEntry('evil.bin'), path }
          for (const [method, json] of [
            ['PUT', { files: [entry] }],
            ['PATCH', { add: [entry] }],
          ] as const) {
            const refused = await call('/v1/index', { method, token: alice, json })
            expect(refused.status, `${method} ${path.slice(0, 20)}`).toBe(400)
            expect((await refused.json()).error.code).toBe('invalid_request')
          }
        }
        expect(await browse('')).toEqual(top)
        expect(await search('evil')).toEqual([])

        // A moved album is a remove and an add of the same sha256s with the new path, in one PATCH.
        const moved = share
          .slice(0, 2)
          .map((file) => ({ ...file, path: 'Nightjar Ensemble/Harrow Lane (2024)' }))
        const patch = await call('/v1/index', {
          method: 'PATCH',
          token: alice,
          json: { remove: moved.map((f) => f.sha256), add: moved },
        })
        expect(await patch.json()).toEqual({ files: 6 })
        expect((await call(`/v1/peers/alice/files?path=${encodeURIComponent(disc)}`)).status).toBe(404)
        const movedLevel = await browse(`path=${encodeURIComponent('Nightjar Ensemble/Harrow Lane (2024)')}`)
        expect(movedLevel.files.map((f) => f.name)).toEqual(['01 opening.flac', '02 the river.flac'])
        expect(places(await search('harrow opening'))).toEqual([
          'Nightjar Ensemble/Harrow Lane (2024)|01 opening.flac',
        ])
      },
      timeout,
    )

    it(
      'since a cursor: only what was published after it (a new holder of old content too), nothing twice; a returning holder or a copied generation is not news; a malformed cursor is a 400',
      async () => {
        const { call, tokenOf } = await directory({})
        type Answer = { results: { name: string; sha256: string; sourceCount: number }[]; cursor: string }
        const search = async (query: string) => {
          const response = await call(`/v1/search?${query}`)
          expect(response.status, await response.clone().text()).toBe(200)
          return (await response.json()) as Answer
        }
        const names = (answer: Answer) => answer.results.map((r) => r.name).sort()
        const put = async (token: string, files: unknown[]) =>
          expect((await call('/v1/index', { method: 'PUT', token, json: { files } })).status).toBe(200)
        const old = fileEntry('alpha old.mkv')
        const alice = await tokenOf('alice-since')
        await put(alice, [old, fileEntry('beta.txt')])
        const first = await search('q=alpha')
        expect(names(first)).toEqual(['alpha old.mkv'])
        expect((await search(`q=alpha&since=${first.cursor}`)).results).toEqual([])
        // The same index again (as at every login), and a login: the holder is not news.
        await put(alice, [old, fileEntry('beta.txt')])
        await tokenOf('alice-since')
        const unchanged = await search(`q=alpha&since=${first.cursor}`)
        expect(unchanged.results).toEqual([])
        expect(unchanged.cursor).toBe(first.cursor)

        const bob = await tokenOf('bob-since', 50072)
        await put(bob, [old, fileEntry('alpha new.mkv'), fileEntry('gamma.txt')])
        const second = await search(`q=alpha&since=${first.cursor}`)
        expect(names(second)).toEqual(['alpha new.mkv', 'alpha old.mkv'])
        expect(second.results.find((r) => r.name === 'alpha old.mkv')?.sourceCount).toBe(2)
        expect(second.cursor).not.toBe(first.cursor)
        expect((await search(`q=alpha&since=${second.cursor}`)).results).toEqual([])
        expect(names(await search(`sha256=${old.sha256}&since=${first.cursor}`))).toEqual(['alpha old.mkv'])
        expect((await search(`sha256=${old.sha256}&since=${second.cursor}`)).results).toEqual([])

        // A patch, then an index big enough to be written in pieces under a pending generation.
        const patch = await call('/v1/index', {
          method: 'PATCH',
          token: alice,
          json: { add: [fileEntry('delta alpha.bin')], remove: [] },
        })
        expect(patch.status).toBe(200)
        const third = await search(`q=alpha&since=${second.cursor}`)
        expect(names(third)).toEqual(['delta alpha.bin'])
        const carol = await tokenOf('carol-since', 50073)
        const bulk = Array.from({ length: 3000 }, (_, i) => fileEntry(`bulk ${i} ${'x'.repeat(100)}.dat`))
        await put(carol, [...bulk, fileEntry('alpha bulk.dat')])
        const fourth = await search(`q=alpha&since=${third.cursor}`)
        expect(names(fourth)).toEqual(['alpha bulk.dat'])
        await put(carol, [...bulk, fileEntry('alpha bulk.dat')])
        await put(carol, [...bulk, { ...fileEntry('alpha bulk.dat'), name: 'alpha renamed.dat' }])
        const fifth = await search(`q=alpha&since=${fourth.cursor}`)
        expect(names(fifth)).toEqual(['alpha renamed.dat'])
        expect((await search(`q=bulk&since=${fourth.cursor}`)).results).toEqual([])
        expect((await search(`q=alpha&since=${fifth.cursor}`)).results).toEqual([])

        for (const cursor of ['!!', 'bm90IGEgY3Vyc29y', '42', 'x'.repeat(40)]) {
          const refused = await call(`/v1/search?q=alpha&since=${cursor}`)
          expect(refused.status).toBe(400)
          expect((await refused.json()).error.message).toMatch(/^since: /)
        }
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
        // One index write per account at a time: the second may be refused (429), never mixed in.
        const statuses = String([put.status, patch.status])
        expect(['200,200', '200,429', '429,200']).toContain(statuses)
        const names = async (q: string) =>
          ((await (await call(`/v1/search?q=${q}`)).json()) as { results: { name: string }[] }).results.map(
            (r) => r.name,
          )
        const held = [...(await names('a.bin')), ...(await names('b.bin')), ...(await names('c.bin'))].sort()
        // PUT then PATCH: b and c; PATCH then PUT or PUT alone: b; PATCH alone: c.
        const orders = {
          '200,200': [['b.bin', 'c.bin'], ['b.bin']],
          '200,429': [['b.bin']],
          '429,200': [['c.bin']],
        }
        expect(orders[statuses as keyof typeof orders]).toContainEqual(held)
      },
      timeout,
    )
  })
}
