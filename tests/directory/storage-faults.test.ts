import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { fileEntry } from '../support/directory-app.ts'
import {
  type DirectoryProcess,
  postJson as post,
  startDirectoryProcess,
} from '../support/directory-process.ts'
import { asNobody, useOtherUser } from '../support/other-user.ts'
import { until } from '../support/peer-process.ts'

let directory: DirectoryProcess | undefined
afterEach(async () => {
  await directory?.stop('SIGKILL')
})

/**
 * File modes bind only users other than root, so as root the directory runs as `nobody` (setpriv, from a
 * copy of the build it can reach) in a folder it owns; as anyone else it runs as that user.
 */
const otherUser = process.getuid?.() === 0 ? useOtherUser() : undefined
const noUnprivilegedUser = process.getuid?.() === 0 && otherUser === undefined

/** Copies a database file with whichever of its -wal and -shm exist; answers the suffixes copied. */
function copyDatabase(from: string, to: string): string[] {
  const suffixes = ['', '-wal', '-shm'].filter((suffix) => existsSync(`${from}${suffix}`))
  for (const suffix of suffixes) copyFileSync(`${from}${suffix}`, `${to}${suffix}`)
  return suffixes
}

const bearer = (token: string) => ({
  'content-type': 'application/json',
  authorization: `Bearer ${token}`,
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
    const copied = copyDatabase(dbPath, join(dir, 'backup.db'))
    expect(copied).toContain('')
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbPath}${suffix}`, { force: true })
    // The guard looks at the file at most once a second: wait for it to notice.
    await until(
      async () => (await fetch(`${url}/healthz`)).status === 503,
      'the directory to see the file gone',
    )

    for (const path of ['/healthz', '/v1/search?q=kept', '/v1/stats']) {
      const response = await fetch(`${url}${path}`)
      expect(response.status, path).toBe(503)
      expect((await response.json()).error.code).toBe('storage_unavailable')
    }
    const write = await post(`${url}/v1/heartbeat`, {}, login.token)
    expect(write.status).toBe(503)

    expect(copyDatabase(join(dir, 'backup.db'), dbPath)).toEqual(copied)
    await until(async () => (await fetch(`${url}/healthz`)).status === 200, 'the restored file to be served')
    const search = await (await fetch(`${url}/v1/search?q=kept`)).json()
    expect(search.results.map((r: { name: string }) => r.name)).toEqual(['kept.flac'])
    expect((await post(`${url}/v1/heartbeat`, {}, login.token)).status).toBe(200)
  })
})

describe('the database file made read-only under the running Node directory', () => {
  it.skipIf(noUnprivilegedUser)(
    'refuses writes with 503 and the SPEC body, still serves reads, and takes writes again once writable',
    async () => {
      const dir =
        otherUser?.folder('peerdir-readonly-', true) ?? mkdtempSync(join(tmpdir(), 'peerdir-readonly-'))
      const dbPath = join(dir, 'directory.db')
      directory = await startDirectoryProcess({
        dbUrl: `file:${dbPath}`,
        env: { LEASE_SECONDS: '600' },
        ...(otherUser && { wrap: asNobody, command: otherUser.directory.command, cwd: otherUser.root }),
      })
      const { url } = directory
      const login = await (
        await post(`${url}/v1/login`, { username: 'alice', password: 'password1', url: 'http://127.0.0.1:1' })
      ).json()
      const put = (files: unknown[]) =>
        fetch(`${url}/v1/index`, {
          method: 'PUT',
          headers: bearer(login.token),
          body: JSON.stringify({ files }),
        })
      expect((await put([fileEntry('kept.flac')])).status).toBe(200)

      // A login writes (its session; the first one registers the name too) and leaves the index alone;
      // a live peer's heartbeat would not write (its lease is renewed in the directory's memory).
      const aLogin = () =>
        post(`${url}/v1/login`, { username: 'carol', password: 'password1', url: 'http://127.0.0.1:3' })
      chmodSync(dbPath, 0o444)
      await until(async () => (await aLogin()).status === 503, 'writes to be refused', 15_000)
      const refused = [
        await put([fileEntry('kept.flac'), fileEntry('lost.flac')]),
        await post(`${url}/v1/login`, { username: 'bob', password: 'password1', url: 'http://127.0.0.1:2' }),
      ]
      for (const response of refused) {
        expect(response.status).toBe(503)
        expect(response.headers.get('retry-after')).toMatch(/^\d+$/)
        expect(await response.json()).toEqual({
          error: { code: 'storage_unavailable', message: expect.any(String) },
        })
      }
      const search = await fetch(`${url}/v1/search?q=flac`)
      expect(search.status).toBe(200)
      expect((await search.json()).results.map((r: { name: string }) => r.name)).toEqual(['kept.flac'])
      expect((await fetch(`${url}/v1/stats`)).status).toBe(200)
      expect((await fetch(`${url}/.well-known/jwks.json`)).status).toBe(200)

      chmodSync(dbPath, 0o644)
      await until(async () => (await aLogin()).status === 200, 'writes to be taken again', 15_000)
      expect((await put([fileEntry('kept.flac'), fileEntry('after.flac')])).status).toBe(200)
      const after = await (await fetch(`${url}/v1/search?q=flac`)).json()
      expect(after.results.map((r: { name: string }) => r.name).sort()).toEqual(['after.flac', 'kept.flac'])
      const bob = await post(`${url}/v1/login`, {
        username: 'bob',
        password: 'password1',
        url: 'http://127.0.0.1:2',
      })
      expect(bob.status).toBe(200)
    },
  )
})
