import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { peerClient } from '../../peer/src/wire/peer-client.ts'
import { directoryBin, nodeBin, repoRoot, startDirectoryProcess } from '../support/directory-process.ts'
import { own } from '../support/owned-processes.ts'
import { peerBin, runCli } from '../support/peer-process.ts'

// Each bin started on port 0 (the kernel picks the port) names that port in its ready line, and is
// reached there: what tests rely on instead of picking a free port and binding it later.

const stops: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()))
})

/** Spawns `args` and resolves with the ready line's match of `ready` (stdout or stderr). */
async function startedUntil(args: string[], env: Record<string, string>, ready: RegExp) {
  const child: ChildProcess = own(
    spawn(nodeBin, args, {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  )
  stops.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  })
  let output = ''
  return new Promise<RegExpExecArray>((resolve, reject) => {
    const read = (chunk: Buffer) => {
      output += chunk
      const match = ready.exec(output)
      if (match) resolve(match)
    }
    child.stdout?.on('data', read)
    child.stderr?.on('data', read)
    child.once('exit', (code) => reject(new Error(`exited (${code}) before its ready line:\n${output}`)))
  })
}

describe('--port 0', () => {
  it('peerdir-directory (PORT=0): its ready line names the port it listens on', async () => {
    const db = `file:${join(mkdtempSync(join(tmpdir(), 'peerdir-port-zero-')), 'directory.db')}`
    const [, url, port] = await startedUntil(
      [directoryBin, '--db', db],
      { PORT: '0', HOST: '127.0.0.1' },
      /directory listening on (http:\/\/127\.0\.0\.1:(\d+)) /,
    )
    expect(Number(port)).toBeGreaterThan(0)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
  })

  it('peer relay: its ready line names the port it listens on', async () => {
    const directory = await startDirectoryProcess()
    stops.push(async () => {
      await directory.stop()
    })
    const [, port] = await startedUntil(
      [peerBin, 'relay', '--port', '0', '--host', '127.0.0.1', '--directory', directory.url],
      {},
      /relay listening on 127\.0\.0\.1:(\d+),/,
    )
    expect(Number(port)).toBeGreaterThan(0)
    const health = await fetch(`http://127.0.0.1:${port}/healthz`)
    expect(await health.json()).toEqual({ ok: true, peers: 0 })
  })

  it('peer start: its ready line, its published URL and its state folder name the port it listens on', async () => {
    const directory = await startDirectoryProcess()
    stops.push(async () => {
      await directory.stop()
    })
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-port-zero-'))
    const content = Buffer.from('served on a port the kernel picked\n')
    writeFileSync(join(dir, 'picked.txt'), content)
    const env = { PEERDIR_STATE_DIR: mkdtempSync(join(tmpdir(), 'peerdir-state-')), PEER_PASSWORD: 'zero-pw' }
    const [, url = '', published, listening] = await startedUntil(
      [
        peerBin,
        'start',
        '--name',
        'zero',
        '--port',
        '0',
        '--dir',
        dir,
        '--directory',
        directory.url,
        '--open',
        // The port the kernel picks is what this is about: in plaintext, the URL is all a caller needs.
        '--plaintext',
      ],
      env,
      /serving peers on (http:\/\/127\.0\.0\.1:(\d+)) \(listening on 127\.0\.0\.1:(\d+)\)/,
    )
    expect(published).toBe(listening)
    const port = Number(listening)
    expect(port).toBeGreaterThan(0)
    // Peers reach it there.
    const sha256 = createHash('sha256').update(content).digest('hex')
    const manifest = await peerClient(url).getManifest({ sha256 })
    expect(Number(manifest.size)).toBe(content.length)
    // Its CLI finds it by that port: the state folder is named by it.
    const status = await runCli(['status', '--json', '--port', String(port)], env)
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ publicUrl: url, files: 1 })
  })
})
