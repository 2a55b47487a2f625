import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '@libsql/client'
import { afterEach, describe, expect, it } from 'vitest'
import { REPLACE_PIECE_BYTES } from '../../directory-worker/src/store/index-replace.ts'
import { fileEntry } from '../support/directory-app.ts'
import {
  type DirectoryProcess,
  directoryBin,
  nodeBin,
  postJson as post,
  repoRoot,
  startDirectoryProcess,
} from '../support/directory-process.ts'
import { fetchResending } from '../support/fetch-resending.ts'
import { listen } from '../support/ports.ts'
import { mustSkip } from '../support/requirements.ts'

let running: DirectoryProcess | undefined
let second: DirectoryProcess | undefined
const cleanups: (() => void)[] = []
afterEach(async () => {
  await Promise.all([running?.stop('SIGKILL'), second?.stop('SIGKILL')])
  second = undefined
  for (const cleanup of cleanups.splice(0)) cleanup()
})

/** A raw HTTP/1.1 POST /v1/login whose headers are read (the server said 100 Continue) and whose
 * body is sent only up to `sent` of its stated length. */
async function halfSentLogin(url: string, sent: string, length: number): Promise<Socket> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  cleanups.push(() => socket.destroy())
  socket.setEncoding('latin1')
  socket.write(
    `POST /v1/login HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
  )
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.once('data', (text: string) =>
      text.startsWith('HTTP/1.1 100') ? resolve() : reject(new Error(`not a 100 Continue: ${text}`)),
    )
  })
  socket.write(sent)
  return socket
}

/** Everything a socket receives until the other side closes it. */
const receivedUntilClosed = (socket: Socket) =>
  new Promise<string>((resolve) => {
    let text = ''
    socket.on('data', (chunk: string) => {
      text += chunk
    })
    socket.once('close', () => resolve(text))
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

  it('says a busy port in one line, without a stack', async () => {
    const busy: Server = createServer()
    cleanups.push(() => busy.close())
    const port = await listen(busy)
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-busy-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const result = spawnSync(
      nodeBin,
      [directoryBin, '--port', String(port), '--db', `file:${join(dir, 'directory.db')}`],
      { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 },
    )
    expect(result.stderr).toBe(
      `peerdir-directory: port ${port} is in use on 127.0.0.1; pick another with --port\n`,
    )
    expect(result.status).toBe(1)
  })

  it('finishes a request in flight on SIGTERM, then closes a connection whose body never comes and exits', async () => {
    running = await startDirectoryProcess()
    const body = JSON.stringify({ username: 'alice', password: 'password1', url: 'http://127.0.0.1:50051' })
    const completing = await halfSentLogin(running.url, body.slice(0, 10), body.length)
    const stalled = await halfSentLogin(running.url, body.slice(0, 10), body.length)
    const completingAnswer = receivedUntilClosed(completing)
    const stalledAnswer = receivedUntilClosed(stalled)
    const exited = running.stop('SIGTERM')
    while (!running.output().includes('SIGTERM: shutting down')) await new Promise((r) => setTimeout(r, 20))
    completing.write(body.slice(10))
    expect(await completingAnswer).toMatch(/^HTTP\/1\.1 200 /)
    expect(await exited).toBe(0)
    expect(await stalledAnswer).toBe('')
  }, 60_000)
})

describe('on a Node older than 22.12', () => {
  const oldNode = '/usr/bin/node'
  const version = spawnSync(oldNode, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? ''
  const [major = 0, minor = 0] = version.slice(1).split('.').map(Number)
  const skip = mustSkip(
    'OLD_NODE',
    version === ''
      ? `no Node at ${oldNode} (apt-get install nodejs, Debian 13's is 20)`
      : major > 22 || (major === 22 && minor >= 12)
        ? `${oldNode} is ${version}, not older than 22.12`
        : undefined,
  )

  it.skipIf(skip).each(['dist/peer.js', 'dist/peerdir-directory.js'])(
    '%s says which Node it needs in one line',
    (bin) => {
      // Started through its shebang with that Node first on PATH, as an installed bin would be.
      const pathDir = mkdtempSync(join(tmpdir(), 'peerdir-old-node-'))
      cleanups.push(() => rmSync(pathDir, { recursive: true, force: true }))
      symlinkSync(oldNode, join(pathDir, 'node'))
      const result = spawnSync(join(repoRoot, bin), ['--version'], {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${pathDir}:${process.env.PATH ?? ''}` },
      })
      expect(result.stderr).toBe(`peerdir needs Node 22.12 or newer (this is ${version.slice(1)})\n`)
      expect(result.status).toBe(1)
    },
  )

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
    // A write that waited out the busy timeout (5 s) for the other process's write lock is answered
    // 503, Retry-After: SQLite's busy handler polls, and two processes writing piece after piece can
    // miss each other's gaps that long on a loaded machine (two writers on two idle cores waited up to
    // 2.1 s). A client sends it again, as here (at most twice, and only for a busy database or a swept
    // write, named in the directory's log line); what is checked is that the race ends in one index, whole.
    const busyRetries: string[] = []
    const put = async (directory: DirectoryProcess, tag: string) => {
      const errors = () =>
        directory
          .output()
          .split('\n')
          .filter((line) => line.startsWith('error '))
      for (let attempt = 0; ; attempt++) {
        const before = errors().length
        const answer = await fetchResending(`${directory.url}/v1/index`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${login.token}` },
          body: JSON.stringify({ files: indexOf(tag) }),
        })
        const text = await answer.text()
        // The directory logs the cause of a 503 just before answering; its line may trail the answer.
        for (let wait = 0; answer.status >= 500 && errors().length === before && wait < 50; wait++)
          await new Promise((resolve) => setTimeout(resolve, 100))
        const cause = errors().slice(before).join(' | ')
        // Or, rarely on a loaded machine, its pending rows were swept by the other process's write
        // (`taken for abandoned`, also a 503 to send again).
        const busy = answer.status === 503 && /SQLITE_BUSY|database is locked|taken for abandoned/.test(cause)
        if (!busy || attempt === 2) return { tag, status: answer.status, body: `${text} ${cause}` }
        busyRetries.push(`${tag}: ${cause}`)
      }
    }
    const db = createClient({ url: running.dbUrl })
    try {
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all([put(running, `a${round}`), put(second, `b${round}`)])
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
    if (busyRetries.length > 0) console.log(`sent again after a busy database: ${busyRetries.join('; ')}`)
  }, 120_000)
})
