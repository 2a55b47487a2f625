// The daemon's directory session against the directory's app on loopback, its clock held still: a
// heartbeat answer without a token (the current one has more than half its life left) leaves the
// session on its token, and no lease runs out while the test looks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DirectorySession } from '../../peer/src/daemon/directory-session.ts'
import { DirectoryClient } from '../../peer/src/wire/directory-client.ts'
import { createTestDirectory, serveTestDirectory, type TestDirectory } from '../support/directory-app.ts'

let app: TestDirectory
let directory: Awaited<ReturnType<typeof serveTestDirectory>>
beforeAll(async () => {
  // A 3 s lease: the session beats about every second, each well inside the 900 s token's first half.
  app = createTestDirectory({ LEASE_SECONDS: '3' })
  directory = await serveTestDirectory(app)
})
afterAll(async () => {
  await directory?.close()
  app?.close()
})

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

  it('held (a relayed peer): up only once released, down at once when held again, reading meanwhile', async () => {
    const client = new DirectoryClient(directory.url)
    const listed = async () =>
      (
        (await (await fetch(`${directory.url}/v1/peers?limit=10000`)).json()) as {
          peers: { username: string; state: string }[]
        }
      ).peers.find((p) => p.username === 'relayed')
    const session = new DirectorySession({
      client,
      username: 'relayed',
      password: 'correct horse',
      publicUrl: 'http://127.0.0.1:7000/relayed/relayed',
      entries: () => [],
      held: true,
      log: () => {},
    })
    session.start()
    try {
      // Held from the start: no login (so no account yet), no token.
      expect(session.token).toBeUndefined()
      expect(await listed()).toBeUndefined()
      const token = await session.release()
      expect(token).toEqual(expect.any(String))
      expect((await listed())?.state).toBe('up')
      await session.hold('the test releases it')
      expect((await listed())?.state).toBe('down')
      // Logged out: its token works nowhere any more.
      await expect(client.sessionState(token as string, 'any')).rejects.toMatchObject({ status: 401 })
      // A viewer session meanwhile: it reads and asks for call tokens, and leaves the peer down.
      const viewer = (await session.tokenWhenReady()) as string
      expect(viewer).toEqual(expect.any(String))
      expect((await client.callToken(viewer, 'relayed')).token).toEqual(expect.any(String))
      expect((await listed())?.state).toBe('down')
      expect(await session.release()).not.toBe(viewer)
      expect((await listed())?.state).toBe('up')
    } finally {
      await session.stop()
    }
  }, 30_000)

  it('held while a heartbeat is on its way: its answer leaves the peer down, and a token asked for meanwhile waits for the viewer', async () => {
    const client = new DirectoryClient(directory.url)
    // The next heartbeat's answer and the viewer's login are held back until the test lets them go.
    const gate = () => {
      let open!: () => void
      const opened = new Promise<void>((resolve) => {
        open = resolve
      })
      return { opened, open }
    }
    const heartbeat = client.heartbeat.bind(client)
    let answerHeld: ReturnType<typeof gate> | undefined
    let answered: () => void = () => {}
    const heartbeatAnswered = new Promise<void>((resolve) => {
      answered = resolve
    })
    client.heartbeat = async (token) => {
      const answer = await heartbeat(token)
      if (answerHeld) {
        answered()
        await answerHeld.opened
      }
      return answer
    }
    const login = client.login.bind(client)
    const viewerHeld = gate()
    client.login = async (request) => {
      if (!request.url) await viewerHeld.opened
      return login(request)
    }
    const session = new DirectorySession({
      client,
      username: 'overlapped',
      password: 'correct horse',
      publicUrl: 'http://127.0.0.1:7001/relayed/overlapped',
      entries: () => [],
      held: true,
      log: () => {},
    })
    session.start()
    try {
      expect(await session.release()).toEqual(expect.any(String))
      answerHeld = gate()
      await heartbeatAnswered
      await session.hold('the test holds it mid-heartbeat')
      expect(session.state).toBe('down')
      // No session until the viewer logs in: a token asked for now waits for it.
      expect(session.token).toBeUndefined()
      let settled = false
      const asked = session.tokenWhenReady().finally(() => {
        settled = true
      })
      answerHeld.open()
      await new Promise((resolve) => setImmediate(resolve))
      expect(settled).toBe(false)
      viewerHeld.open()
      const waited = await asked
      expect(waited).toEqual(expect.any(String))
      // The heartbeat answered for the ended session put no token back and left the peer down.
      expect(session.state).toBe('down')
      expect(session.token).toBe(waited)
    } finally {
      answerHeld?.open()
      viewerHeld.open()
      await session.stop()
    }
  }, 30_000)
})
