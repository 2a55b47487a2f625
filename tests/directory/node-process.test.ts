import { createClient } from '@libsql/client'
import { afterEach, describe, expect, it } from 'vitest'
import { REPLACE_PIECE_BYTES } from '../../directory-worker/src/store/index-replace.ts'
import { fileEntry } from '../support/directory-app.ts'
import {
  type DirectoryProcess,
  postJson as post,
  startDirectoryProcess,
} from '../support/directory-process.ts'

let running: DirectoryProcess | undefined
let second: DirectoryProcess | undefined
afterEach(async () => {
  await Promise.all([running?.stop('SIGKILL'), second?.stop('SIGKILL')])
  second = undefined
})

describe('the Node entry as a real process', () => {
  it('starts, serves, stops cleanly on SIGTERM, and keeps its state across a restart', async () => {
    running = await startDirectoryProcess({ env: { LEASE_SECONDS: '600' } })
    const { url, dbUrl, port } = running
    const login = await (
      await post(`${url}/v1/login`, {
        username: 'alice',
        password: 'password1',
        url: 'http://127.0.0.1:50051',
      })
    ).json()
    const put = await fetch(`${url}/v1/index`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${login.token}` },
      body: JSON.stringify({ files: [fileEntry('persisted.flac')] }),
    })
    expect(put.status).toBe(200)
    const jwksBefore = await (await fetch(`${url}/.well-known/jwks.json`)).json()
    expect(await running.stop('SIGTERM')).toBe(0)
    expect(running.output()).toMatch(/PUT \/v1\/index 200/)

    running = await startDirectoryProcess({ port, dbUrl, env: { LEASE_SECONDS: '600' } })
    const search = await (await fetch(`${url}/v1/search?q=persisted`)).json()
    expect(search.results.map((r: { name: string }) => r.name)).toEqual(['persisted.flac'])
    expect(await (await fetch(`${url}/.well-known/jwks.json`)).json()).toEqual(jwksBefore)
    // The token from before the restart still works: same key, same open session.
    expect((await post(`${url}/v1/heartbeat`, {}, login.token)).status).toBe(200)
    const wrong = await post(`${url}/v1/login`, {
      username: 'alice',
      password: 'not the password',
      url: 'http://127.0.0.1:1',
    })
    expect(wrong.status).toBe(401)
  })

  it('refuses bad flags with exit code 2 and one clear line', async () => {
    const { spawnSync } = await import('node:child_process')
    const { nodeBin, repoRoot } = await import('../support/directory-process.ts')
    const result = spawnSync(nodeBin, ['dist/peerdir-directory.js', '--port', 'banana'], {
      cwd: repoRoot,
      encoding: 'utf8',
    })
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('must be a port number')
    expect(result.stderr).not.toMatch(/\n\s+at /)
  })

  it('two processes on one database racing big replaces of one account: one index live whole, nothing else left', async () => {
    running = await startDirectoryProcess({ env: { LEASE_SECONDS: '600' } })
    second = await startDirectoryProcess({ dbUrl: running.dbUrl, env: { LEASE_SECONDS: '600' } })
    const login = await (
      await post(`${running.url}/v1/login`, {
        username: 'racer',
        password: 'password1',
        url: 'http://127.0.0.1:50051',
      })
    ).json()
    const FILES = 15_000
    const indexOf = (tag: string) =>
      Array.from({ length: FILES }, (_, i) => fileEntry(`${tag}-${String(i).padStart(5, '0')}.flac`))
    // Several pieces each: written in commits of their own, so the two writes go in between each other.
    expect(JSON.stringify(indexOf('size')).length).toBeGreaterThan(3 * REPLACE_PIECE_BYTES)
    const put = async (url: string, tag: string) => {
      const answer = await fetch(`${url}/v1/index`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${login.token}` },
        body: JSON.stringify({ files: indexOf(tag) }),
      })
      return { tag, status: answer.status, body: await answer.text() }
    }
    const db = createClient({ url: running.dbUrl })
    try {
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all([put(running.url, `a${round}`), put(second.url, `b${round}`)])
        for (const answer of answers) expect(answer.status, answer.body).toBe(200)
        // Whichever went live last, its index is all there is: no row of the other, of any generation.
        const rows = await db.execute(
          "SELECT substr(f.name, 1, instr(f.name, '-') - 1) AS tag, count(*) AS n, p.file_count AS count FROM files f JOIN peers p ON p.id = f.peer_id WHERE p.username = 'racer' GROUP BY tag",
        )
        expect(rows.rows.length, JSON.stringify(rows.rows)).toBe(1)
        expect([`a${round}`, `b${round}`]).toContain(String(rows.rows[0]?.tag))
        expect(Number(rows.rows[0]?.n)).toBe(FILES)
        expect(Number(rows.rows[0]?.count)).toBe(FILES)
        const listed = await (await fetch(`${second.url}/v1/peers`)).json()
        expect(listed.peers[0]?.files).toBe(FILES)
      }
    } finally {
      db.close()
    }
  }, 120_000)
})
