import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fileEntry } from '../support/directory-app.ts'
import {
  type DirectoryProcess,
  postJson as post,
  startDirectoryProcess,
} from '../support/directory-process.ts'

let directory: DirectoryProcess | undefined
afterAll(async () => {
  await directory?.stop('SIGKILL')
})

describe('the database file going away under the running Node directory', () => {
  it('answers 503 with the SPEC body while it is missing, and serves the restored file again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-fault-'))
    const dbPath = join(dir, 'directory.db')
    directory = await startDirectoryProcess({ dbUrl: `file:${dbPath}`, env: { LEASE_SECONDS: '600' } })
    const { url } = directory
    const login = await (
      await post(`${url}/v1/login`, {
        username: 'alice',
        password: 'password1',
        url: 'http://127.0.0.1:50051',
      })
    ).json()
    await fetch(`${url}/v1/index`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${login.token}` },
      body: JSON.stringify({ files: [fileEntry('kept.flac')] }),
    })
    // An operator's backup: the database file with its WAL, copied while the directory runs.
    for (const suffix of ['', '-wal', '-shm']) {
      try {
        copyFileSync(`${dbPath}${suffix}`, join(dir, `backup.db${suffix}`))
      } catch {}
    }
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbPath}${suffix}`, { force: true })
    await new Promise((r) => setTimeout(r, 1100))

    for (const path of ['/healthz', '/v1/search?q=kept', '/v1/stats']) {
      const response = await fetch(`${url}${path}`)
      expect(response.status, path).toBe(503)
      expect((await response.json()).error.code).toBe('storage_unavailable')
    }
    const write = await post(`${url}/v1/heartbeat`, {}, login.token)
    expect(write.status).toBe(503)

    for (const suffix of ['', '-wal', '-shm']) {
      try {
        copyFileSync(join(dir, `backup.db${suffix}`), `${dbPath}${suffix}`)
      } catch {}
    }
    await new Promise((r) => setTimeout(r, 1100))
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    const search = await (await fetch(`${url}/v1/search?q=kept`)).json()
    expect(search.results.map((r: { name: string }) => r.name)).toEqual(['kept.flac'])
    expect((await post(`${url}/v1/heartbeat`, {}, login.token)).status).toBe(200)
  })
})
