// A directory and peer daemons on loopback, started as users start them (the built bins).
import { execFile } from 'node:child_process'
import { linkSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../tests/support/ports.ts'
import { spawnUntil } from './processes.ts'

export type Network = {
  work: string
  directoryUrl: string
  env: Record<string, string>
  peer: (
    name: string,
    options?: {
      files?: string[]
      rate?: string
      args?: string[]
      ready?: RegExp
      env?: Record<string, string>
      /** A command the daemon runs under (`ip netns exec <home>`: a peer behind a NAT). */
      wrap?: string[]
    },
  ) => Promise<{ port: number; dir: string; pid: number }>
  get: (
    port: number,
    target: string,
  ) => Promise<{ seconds: number; size: number; bytesPerSource: Record<string, number> }>
  close: () => void
}

/** `host`: where the directory listens (default loopback). */
export async function network(options: { host?: string } = {}): Promise<Network> {
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-net-'))
  const env = { PEERDIR_STATE_DIR: join(work, 'state'), PEER_PASSWORD: 'bench-password' }
  const host = options.host ?? '127.0.0.1'
  const directory = await spawnUntil(
    ['dist/peerdir-directory.js', '--host', host, '--port', '0', '--db', `file:${join(work, 'd.db')}`],
    /listening on (http:\/\/\S+)/,
  )
  const directoryUrl = directory.match[1] ?? ''
  const children = [directory.child]
  return {
    work,
    directoryUrl,
    env,
    async peer(name, options = {}) {
      const dir = join(work, name)
      mkdirSync(dir, { recursive: true })
      for (const file of options.files ?? []) linkSync(file, join(dir, file.split('/').pop() ?? 'file'))
      const port = await freePort()
      const args = [
        'dist/peer.js',
        'start',
        '--name',
        name,
        '--port',
        String(port),
        '--dir',
        dir,
        '--directory',
        directoryUrl,
      ]
      if (options.rate) args.push('--max-upload-rate', options.rate)
      args.push(...(options.args ?? []))
      const started = await spawnUntil(
        args,
        options.ready ?? /published \d+ files/,
        { ...env, ...options.env },
        options.wrap,
      )
      children.push(started.child)
      return { port, dir, pid: started.child.pid ?? 0 }
    },
    get(port, target) {
      return new Promise((resolve, reject) => {
        execFile(
          join(process.cwd(), 'node_modules/.bin/node'),
          ['dist/peer.js', 'get', target, '--json', '--port', String(port)],
          { env: { ...process.env, ...env }, maxBuffer: 1 << 20 },
          (err, stdout, stderr) =>
            err ? reject(new Error(stderr || err.message)) : resolve(JSON.parse(stdout)),
        )
      })
    },
    close() {
      for (const child of children) child.kill('SIGKILL')
      rmSync(work, { recursive: true, force: true })
    },
  }
}
