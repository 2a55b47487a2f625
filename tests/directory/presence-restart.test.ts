// kill -9 of the Node directory while 50 peers heartbeat: leases live in its memory, so what the
// restarted process knows of them is only what storage kept (peers up, no heartbeat times).
import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { createClient } from '@libsql/client'
import { afterEach, describe, expect, it } from 'vitest'
import { type DirectoryProcess, postJson, startDirectoryProcess } from '../support/directory-process.ts'

const LEASE = 4
const PEERS = 50
const running: DirectoryProcess[] = []
const cleanups: (() => void)[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((directory) => directory.stop('SIGKILL')))
  for (const cleanup of cleanups.splice(0)) cleanup()
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function loginPeer(url: string, username: string, port: number): Promise<string> {
  const answer = await postJson(`${url}/v1/login`, {
    username,
    password: 'correct horse',
    url: `http://127.0.0.1:${port}`,
  })
  if (answer.status !== 200) throw new Error(`login ${username}: ${answer.status} ${await answer.text()}`)
  return ((await answer.json()) as { token: string }).token
}

describe('a Node directory killed and restarted while peers heartbeat', () => {
  it('lists none of them down, and a peer that stopped before the kill is down one lease after the restart', async () => {
    const env = { LEASE_SECONDS: String(LEASE) }
    const first = await startDirectoryProcess({ env })
    running.push(first)
    cleanups.push(() => rmSync(dirname(first.dbUrl.slice('file:'.length)), { recursive: true, force: true }))
    let url = first.url
    const names = Array.from({ length: PEERS }, (_, i) => `beater${i}`)
    const tokens = new Map<string, string>()
    // Each peer beats every third of the lease from its login on (fifty logins one after another can
    // outlast a lease on a loaded machine: the first ones would be down before their first beat);
    // while the directory is away it tries again soon.
    const beats = new Map(names.map((name) => [name, 0]))
    const refused: string[] = []
    let stopping = false
    const beaters: Promise<void>[] = []
    for (const [i, name] of names.entries()) {
      tokens.set(name, await loginPeer(url, name, 40_000 + i))
      beaters.push(beat(name))
    }
    const goneToken = await loginPeer(url, 'gone', 39_999)
    async function beat(name: string) {
      while (!stopping) {
        try {
          // A request caught by the kill may never be answered: each has its own deadline.
          const answer = await fetch(`${url}/v1/heartbeat`, {
            method: 'POST',
            headers: { authorization: `Bearer ${tokens.get(name)}` },
            signal: AbortSignal.timeout(5000),
          })
          if (answer.status === 200) beats.set(name, (beats.get(name) ?? 0) + 1)
          else refused.push(`${name}: ${answer.status}`)
          await answer.body?.cancel()
          await sleep((LEASE * 1000) / 3 - 200 + Math.random() * 200)
        } catch {
          await sleep(100)
        }
      }
    }
    // Whoever is listed down at any look while the directory answers.
    const listedDown = new Set<string>()
    let watching = true
    const watcher = (async () => {
      while (watching) {
        try {
          const answer = await fetch(`${url}/v1/peers?state=down`, { signal: AbortSignal.timeout(5000) })
          const body = (await answer.json()) as { peers: { username: string }[] }
          for (const peer of body.peers) listedDown.add(peer.username)
        } catch {
          // the directory is away
        }
        await sleep(50)
      }
    })()
    const allBeat = async (times: number) => {
      const from = new Map(beats)
      while (names.some((name) => (beats.get(name) ?? 0) < (from.get(name) ?? 0) + times)) await sleep(50)
    }
    try {
      await allBeat(2)
      expect((await postJson(`${url}/v1/heartbeat`, {}, goneToken)).status).toBe(200)
      // 'gone' stops here, before the kill.
      await first.stop('SIGKILL')
      const second = await startDirectoryProcess({ env, port: first.port, dbUrl: first.dbUrl })
      const readyAt = Date.now()
      running.push(second)
      url = second.url
      await allBeat(2)
      for (;;) {
        const peers = (await (await fetch(`${url}/v1/peers?state=down`)).json()) as {
          peers: { username: string }[]
        }
        if (peers.peers.some((peer) => peer.username === 'gone')) break
        await sleep(100)
      }
      await allBeat(1)
      const db = createClient({ url: first.dbUrl })
      try {
        // Its down transition is stored as of its lease's end: at most one lease after the restart.
        const stored = await db.execute("SELECT lease_expires_at FROM peers WHERE username = 'gone'")
        expect(Number(stored.rows[0]?.lease_expires_at)).toBeLessThanOrEqual(readyAt + LEASE * 1000)
      } finally {
        db.close()
      }
    } finally {
      stopping = true
      watching = false
      await Promise.all([...beaters, watcher])
    }
    expect(refused).toEqual([])
    expect([...listedDown].filter((name) => name !== 'gone')).toEqual([])
    expect(listedDown.has('gone')).toBe(true)
  }, 120_000)
})
