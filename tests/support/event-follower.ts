import { spawn } from 'node:child_process'
import { nodeBin, repoRoot } from './directory-process.ts'
import { own } from './owned-processes.ts'
import { type PeerProcess, peerBin } from './peer-process.ts'

export type FollowedEvent = { type: string; time: string; [field: string]: unknown }

/**
 * `peer events --json` as a real process against `peer`: every line it prints, each parsed (a line that
 * is not JSON fails the test that waits on it), and a way to pause it (SIGSTOP), as a reader that stops
 * reading.
 */
export function followEvents(peer: PeerProcess, stateRoot: string) {
  const child = own(
    spawn(nodeBin, [peerBin, 'events', '--json', '--port', String(peer.port)], {
      cwd: repoRoot,
      env: { ...process.env, PEERDIR_STATE_DIR: stateRoot },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  )
  const lines: string[] = []
  let pending = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    pending += chunk
    const whole = pending.split('\n')
    pending = whole.pop() ?? ''
    lines.push(...whole)
  })
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const events = (): FollowedEvent[] => lines.map((line) => JSON.parse(line))
  return {
    child,
    lines: () => [...lines],
    events,
    async waitFor(match: (event: FollowedEvent) => boolean, what: string, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = events().find(match)
        if (found) return found
        if (child.exitCode !== null) throw new Error(`peer events exited (${child.exitCode}): ${stderr}`)
        if (Date.now() > deadline)
          throw new Error(`peer events: no ${what} in ${timeoutMs} ms; got:\n${lines.join('\n')}\n${stderr}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    /** Ctrl-C: answers the exit code. */
    async interrupt() {
      child.kill('SIGCONT')
      child.kill('SIGINT')
      return exited
    },
  }
}

/**
 * Starts following `peer`'s events and returns once the follower is known to be subscribed: the daemon
 * logs out and in, and the follower has seen the session go down and up again.
 */
export async function subscribedFollower(peer: PeerProcess, stateRoot: string) {
  const follower = followEvents(peer, stateRoot)
  for (;;) {
    const logout = await peer.cli(['logout'])
    if (logout.code !== 0) throw new Error(`peer logout: ${logout.stderr}`)
    const seen = await follower
      .waitFor((e) => e.type === 'session' && e.state === 'down', 'session down', 2_000)
      .catch(() => undefined)
    if (seen) break
    await peer.cli(['login']) // not subscribed yet when it went down: again
  }
  const login = await peer.cli(['login'])
  if (login.code !== 0) throw new Error(`peer login: ${login.stderr}`)
  await follower.waitFor((e) => e.type === 'session' && e.state === 'up', 'session up')
  return follower
}
