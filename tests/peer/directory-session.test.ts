// The daemon's directory session against a real directory process: a heartbeat answer without a
// token (the current one has more than half its life left) leaves the session on its token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DirectorySession } from '../../peer/src/daemon/directory-session.ts'
import { DirectoryClient } from '../../peer/src/wire/directory-client.ts'
import { type DirectoryProcess, startDirectoryProcess } from '../support/directory-process.ts'

let directory: DirectoryProcess
beforeAll(async () => {
  // A 3 s lease: the session beats about every second, each well inside the 900 s token's first half.
  directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '3' } })
})
afterAll(() => directory.stop())

describe('the directory session', () => {
  it('keeps its token through heartbeats that answer none, and stays logged in once', async () => {
    const client = new DirectoryClient(directory.url)
    // The real client, counted: the test waits for beats, not for a time.
    const heartbeat = client.heartbeat.bind(client)
    const answers: { token?: string }[] = []
    client.heartbeat = async (token) => {
      const answer = await heartbeat(token)
      answers.push(answer)
      return answer
    }
    const logs: string[] = []
    const session = new DirectorySession({
      client,
      username: 'keeper',
      password: 'correct horse',
      publicUrl: 'http://127.0.0.1:50099',
      entries: () => [],
      log: (line) => logs.push(line),
    })
    session.start()
    try {
      expect(await session.login()).toBe('up')
      const first = session.token
      expect(first).toEqual(expect.any(String))
      for (let i = 0; i < 200 && answers.length < 3; i++) await new Promise((r) => setTimeout(r, 50))
      expect(answers.length).toBeGreaterThanOrEqual(3)
      expect(answers.every((answer) => answer.token === undefined)).toBe(true)
      expect(session.token).toBe(first)
      expect(session.state).toBe('up')
      expect(logs.filter((line) => line.startsWith('logged in'))).toHaveLength(1)
    } finally {
      await session.stop()
    }
  }, 30_000)
})
