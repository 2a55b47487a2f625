import { spawn } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { fileEntry } from '../support/directory-app.ts'
import {
  type DirectoryProcess,
  directoryBin,
  nodeBin,
  postJson,
  repoRoot,
  startDirectoryProcess,
} from '../support/directory-process.ts'

// READ_REQUIRES_AUTH=true against a real process: a stranger gets no account and no count, and the
// operator makes and removes accounts with `peerdir-directory users` on the same database file.
let running: DirectoryProcess | undefined
afterEach(async () => {
  await running?.stop('SIGKILL')
  running = undefined
})

const peerUrl = 'http://127.0.0.1:50051'

/**
 * `peerdir-directory users ...` on the running directory's database, as the operator would run it.
 * Asynchronous: a synchronous spawn would stop this file's event loop for as long as the command runs
 * (seconds on a loaded machine), so a keep-alive connection the directory closed meanwhile would be
 * taken for open by the next fetch.
 */
function users(
  args: string[],
  input?: string,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  if (!running) throw new Error('no directory running')
  const child = spawn(nodeBin, [directoryBin, 'users', ...args, '--db', running.dbUrl], { cwd: repoRoot })
  child.stdin.end(input ?? '')
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text
  })
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text
  })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (status) => resolve({ status, stdout, stderr }))
  })
}

describe('members-only mode (READ_REQUIRES_AUTH=true)', () => {
  it('gives a stranger neither an account nor any count; the operator adds, lists and removes accounts', async () => {
    running = await startDirectoryProcess({ env: { READ_REQUIRES_AUTH: 'true', LEASE_SECONDS: '600' } })
    const { url } = running

    const signup = await postJson(`${url}/v1/login`, {
      username: 'mallory',
      password: 'mallory password',
      url: peerUrl,
    })
    expect(signup.status).toBe(403)
    expect((await signup.json()).error.code).toBe('registration_closed')
    const stats = await fetch(`${url}/v1/stats`)
    expect(stats.status).toBe(401)
    expect((await stats.json()).error.code).toBe('missing_token')
    const metrics = await fetch(`${url}/metrics`)
    expect(metrics.status).toBe(401)
    const refusal = await metrics.json()
    expect(refusal.error.code).toBe('metrics_token_required')
    expect(refusal.error.message).toContain('METRICS_TOKEN')
    const page = await (await fetch(`${url}/`)).text()
    expect(page).toContain('id="login-form"')
    expect(page).not.toMatch(/id="stat-peers">\d/)

    const added = await users(['add', 'carol', '--password-stdin'], 'carol password\n')
    expect(added.stderr).toBe('')
    expect(added.status).toBe(0)
    expect((await users(['add', 'dave', '--password-stdin'], 'dave password')).status).toBe(0)
    const again = await users(['add', 'carol', '--password-stdin'], 'carol password\n')
    expect(again.status).toBe(1)
    expect(again.stderr).toMatch(/carol.*exists/)
    // Without --password-stdin and without a terminal there is nowhere to ask: bad usage.
    expect((await users(['add', 'erin'])).status).toBe(2)

    const carolLogin = await postJson(`${url}/v1/login`, {
      username: 'carol',
      password: 'carol password',
      url: peerUrl,
    })
    expect(carolLogin.status).toBe(200)
    const carol = (await carolLogin.json()).token
    const daveLogin = await postJson(`${url}/v1/login`, { username: 'dave', password: 'dave password' })
    const dave = (await daveLogin.json()).token
    const put = await fetch(`${url}/v1/index`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${carol}` },
      body: JSON.stringify({ files: [fileEntry('carols song.flac')] }),
    })
    expect(put.status).toBe(200)
    const withToken = await fetch(`${url}/v1/stats`, { headers: { authorization: `Bearer ${dave}` } })
    expect(await withToken.json()).toMatchObject({ peersTotal: 2, files: 1 })

    const listed = await users(['list', '--json'])
    expect(listed.status).toBe(0)
    const { users: accounts } = JSON.parse(listed.stdout)
    expect(accounts.map((a: { username: string }) => a.username)).toEqual(['carol', 'dave'])
    expect(accounts[0]).toMatchObject({ username: 'carol', state: 'up', files: 1 })
    const human = await users(['list'])
    expect(human.stdout).toMatch(/^carol\s+up\s+1 file/m)

    const removed = await users(['remove', 'carol'])
    expect(removed.status).toBe(0)
    expect((await users(['remove', 'carol'])).status).toBe(3)
    const beat = await postJson(`${url}/v1/heartbeat`, {}, carol)
    expect(beat.status).toBe(401)
    expect((await beat.json()).error.code).toBe('session_revoked')
    const search = await fetch(`${url}/v1/search?q=carols`, { headers: { authorization: `Bearer ${dave}` } })
    expect((await search.json()).results).toEqual([])
    const gone = await postJson(`${url}/v1/login`, {
      username: 'carol',
      password: 'carol password',
      url: peerUrl,
    })
    expect(gone.status).toBe(403)
  }, 60_000)

  it('serves /metrics to the holder of METRICS_TOKEN only', async () => {
    running = await startDirectoryProcess({
      env: { READ_REQUIRES_AUTH: 'true', METRICS_TOKEN: 'a metrics secret of some length' },
    })
    const scrape = (token?: string) =>
      fetch(`${running?.url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {})
    expect((await scrape()).status).toBe(401)
    expect((await scrape('a metrics secret of some lengtH')).status).toBe(401)
    const ok = await scrape('a metrics secret of some length')
    expect(ok.status).toBe(200)
    expect(await ok.text()).toContain('peerdir_peers 0')
  }, 60_000)
})
