import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fileEntry } from '../support/directory-app.ts'
import { fetchResending } from '../support/fetch-resending.ts'
import { startWranglerDev, type WranglerDev } from '../support/wrangler-dev.ts'

// `npx wrangler dev` with no vars and no secrets, as in a fresh clone: the directory runs on the local
// D1 database of wrangler.toml, and its data outlives the process.
const state = mkdtempSync(join(tmpdir(), 'peerdir-d1-state-'))
let worker: WranglerDev | undefined
afterAll(async () => {
  await worker?.stop()
})

const call = (path: string, init: { method?: string; token?: string; json?: unknown } = {}) => {
  if (!worker) throw new Error('no worker running')
  return fetchResending(`${worker.url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    },
    body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
  })
}
const login = async (username: string, password: string) => {
  const response = await call('/v1/login', {
    method: 'POST',
    json: { username, password, url: 'http://127.0.0.1:50062' },
  })
  expect(response.status, await response.clone().text()).toBe(200)
  return ((await response.json()) as { token: string }).token
}
const names = async (q: string) =>
  ((await (await call(`/v1/search?q=${q}&limit=500`)).json()) as { results: { name: string }[] }).results.map(
    (result) => result.name,
  )

describe('the directory on Workers with zero set-up (local D1)', () => {
  it('answers login, index, search and the dashboard, with an index of several pieces', {
    timeout: 180_000,
  }, async () => {
    worker = await startWranglerDev({}, state)
    expect(worker.output()).toMatch(/env\.DB \(peerdir\)\s+D1 Database\s+local/)
    const token = await login('dana', 'dana on d1')
    // About 4 MB of entries: several pieces of D1's 2 MB bound value. (100,000 files, 21 MB, pass on
    // the store's own D1 test; in workerd that body sometimes ended the isolate, near its 128 MB.)
    const files = Array.from({ length: 20_000 }, (_, i) =>
      fileEntry(`reel-${String(i).padStart(5, '0')}.mkv`),
    )
    const put = await call('/v1/index', { method: 'PUT', token, json: { files } })
    expect(await put.json()).toEqual({ files: 20_000 })
    expect(await names('reel-19999')).toEqual(['reel-19999.mkv'])
    const patches = await Promise.all(
      [1, 2, 3].map(() =>
        call('/v1/index', {
          method: 'PATCH',
          token,
          json: { add: [fileEntry('extra.bin')], remove: [files[0]?.sha256] },
        }),
      ),
    )
    // One index write of an account at a time: the others are refused with 429 and change nothing.
    const answers = await Promise.all(patches.map(async (r) => ({ status: r.status, body: await r.json() })))
    expect(answers.some((a) => a.status === 200)).toBe(true)
    for (const answer of answers) {
      if (answer.status === 200) expect(answer.body).toEqual({ files: 20_000 })
      else expect(answer).toMatchObject({ status: 429, body: { error: { code: 'index_write_in_progress' } } })
    }
    expect((await call('/v1/heartbeat', { method: 'POST', token })).status).toBe(200)
    const dashboard = await call('/')
    expect(await dashboard.text()).toContain('peerdir network')
    expect(await (await call('/v1/stats')).json()).toMatchObject({ peersUp: 1, files: 20_000 })
  })

  it('keeps accounts, keys and indexes across a killed and restarted wrangler dev', {
    timeout: 180_000,
  }, async () => {
    const jwks = await (await call('/.well-known/jwks.json')).json()
    await worker?.kill()
    worker = await startWranglerDev({}, state)
    expect(await (await call('/.well-known/jwks.json')).json()).toEqual(jwks)
    expect(await names('extra')).toEqual(['extra.bin'])
    const wrong = await call('/v1/login', {
      method: 'POST',
      json: { username: 'dana', password: 'not the password', url: 'http://127.0.0.1:50062' },
    })
    expect(wrong.status).toBe(401)
    const token = await login('dana', 'dana on d1')
    const out = await call('/v1/logout', { method: 'POST', token })
    expect((await out.json()).peer).toMatchObject({ state: 'down', files: 20_000 })
  })
})
