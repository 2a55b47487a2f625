import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot } from './directory-process.ts'
import { own } from './owned-processes.ts'
import { freePort } from './ports.ts'

export type WranglerDev = {
  url: string
  output: () => string
  stop: () => Promise<void>
  /** Ends wrangler and workerd at once (SIGKILL), as a crash or a power cut would. */
  kill: () => Promise<void>
  child: ChildProcess
}

/**
 * Runs the Workers build in real workerd via `wrangler dev`, with vars given on the command line.
 * Its local state (the D1 database DB) lives in `persistTo`, a fresh temporary folder unless given.
 */
export async function startWranglerDev(
  vars: Record<string, string>,
  persistTo = mkdtempSync(join(tmpdir(), 'peerdir-wrangler-state-')),
): Promise<WranglerDev> {
  // wrangler takes no port 0: a port found free can be taken by another test's server before workerd
  // binds it, so a start that lost that race is made again on other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(vars, persistTo)
    } catch (err) {
      if (attempt >= 3 || !(err instanceof PortTaken)) throw err
    }
  }
}

class PortTaken extends Error {}

async function startOnce(vars: Record<string, string>, persistTo: string): Promise<WranglerDev> {
  const port = await freePort()
  const inspector = await freePort()
  const args = ['dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector)]
  args.push('--persist-to', persistTo)
  for (const [name, value] of Object.entries(vars)) args.push('--var', `${name}:${value}`)
  const child = spawn(join(repoRoot, 'node_modules/.bin/wrangler'), args, {
    cwd: repoRoot,
    // Own process group, so stop() can end wrangler and the workerd it started together.
    detached: true,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1', BROWSER: 'none' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  own(child, { group: true })
  let output = ''
  child.stdout?.on('data', (chunk) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk) => {
    output += chunk
  })
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.pid === undefined) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try {
      process.kill(-child.pid, signal)
    } catch {
      return
    }
    const timer = setTimeout(() => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL')
      } catch {}
    }, 5000)
    await exited
    clearTimeout(timer)
  }
  const stop = () => end('SIGTERM')
  const kill = () => end('SIGKILL')
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 90_000
  for (;;) {
    if (child.exitCode !== null) {
      const failure = `wrangler dev exited (${child.exitCode}):\n${output}`
      throw /Address already in use/.test(output) ? new PortTaken(failure) : new Error(failure)
    }
    if (/Ready on/.test(output)) {
      try {
        await fetch(`${url}/.well-known/jwks.json`)
        break
      } catch {
        // workerd still starting
      }
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`wrangler dev did not get ready in 90 s:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  return { url, output: () => output, stop, kill, child }
}
