import { afterEach, describe, expect, it } from 'vitest'
import { fileEntry } from '../support/directory-app.ts'
import {
  type DirectoryProcess,
  postJson as post,
  startDirectoryProcess,
} from '../support/directory-process.ts'

let running: DirectoryProcess | undefined
afterEach(async () => {
  await running?.stop('SIGKILL')
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
})
