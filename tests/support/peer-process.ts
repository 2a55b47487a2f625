import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { nodeBin, repoRoot } from './directory-process.ts'
import { own } from './owned-processes.ts'
import { startReadyProcess } from './ready-process.ts'

export { sleepUntil, until } from './waiting.ts'

export const peerBin = join(repoRoot, 'dist/peer.js')

export type PeerProcess = {
  name: string
  port: number
  dir: string
  url: string
  /** The key it serves TLS with (`sha256/…`), as the directory lists it; null with --plaintext. */
  key: string | null
  child: ChildProcess
  output: () => string
  /** Runs `peer <args> --port <this port>` against this daemon. */
  /** `timeoutMs`: the CLI is killed past it, answering code null and saying so in stderr. */
  cli: (args: string[], options?: { env?: Record<string, string>; timeoutMs?: number }) => Promise<CliResult>
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<void>
}

export type CliResult = { code: number | null; stdout: string; stderr: string }

/** One state root for a test file, so daemons and CLIs of that test find each other and nothing else. */
export const testStateRoot = () => mkdtempSync(join(tmpdir(), 'peerdir-state-'))

/** How to run `peer` (default: the checkout's build on the project's Node) and from which folder. */
export type PeerCommand = { command: string[]; cwd: string }
const checkoutPeer: PeerCommand = { command: [nodeBin, peerBin], cwd: repoRoot }

export function runCli(
  args: string[],
  env: Record<string, string>,
  { command: [command, ...prefix], cwd }: PeerCommand = checkoutPeer,
  timeoutMs?: number,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(command as string, [...prefix, ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(timeoutMs !== undefined && { timeout: timeoutMs, killSignal: 'SIGKILL' as const }),
    })
    own(child)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    // 'close', not 'exit': a process's last output may still be in its pipes when it has exited (a
    // CLI that exited 1 was once seen with its one line of stderr not read yet).
    child.on('close', (code, signal) => {
      if (code === null && signal === 'SIGKILL' && timeoutMs !== undefined)
        stderr += `\n(killed: no answer in ${timeoutMs} ms)`
      resolve({ code, stdout, stderr })
    })
  })
}

/**
 * The daemon's ready line: `serving peers on <url> (listening on <host>:<port>)`. Without a port the
 * daemon starts on `--port 0` and the kernel's choice is the one the line names (its state folder is
 * keyed by that port, so a restart that should find the same state passes `port` again).
 */
const DAEMON_READY = /serving peers on (?<url>\S+) \(listening on \S*:(?<port>\d+)\)/

/** Starts `peer start` as a real process and waits until it has published its index. */
export async function startPeer(options: {
  name: string
  directoryUrl: string
  stateRoot: string
  dir?: string
  port?: number
  args?: string[]
  env?: Record<string, string>
  waitForPublish?: boolean
  /** A command the daemon runs under, e.g. `bash -c 'ulimit -f N; exec "$0" "$@"'` (see `underFileSizeLimit`). */
  wrap?: string[]
  peer?: PeerCommand
}): Promise<PeerProcess> {
  const peer = options.peer ?? checkoutPeer
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), `peerdir-${options.name}-`))
  mkdirSync(dir, { recursive: true })
  const env = {
    PEERDIR_STATE_DIR: options.stateRoot,
    PEER_PASSWORD: `password-of-${options.name}`,
    ...options.env,
  }
  const daemon = await startReadyProcess({
    name: `peer ${options.name}`,
    command: [
      ...(options.wrap ?? []),
      ...peer.command,
      ...['start', '--name', options.name, '--port', String(options.port ?? 0)],
      ...['--dir', dir, '--directory', options.directoryUrl, ...(options.args ?? [])],
    ],
    cwd: peer.cwd,
    env: { ...process.env, ...env },
    ready: DAEMON_READY,
  })
  const { port } = daemon
  const key = /TLS key (sha256\/\S+)/.exec(daemon.output())?.[1] ?? null
  const waitFor = async (pattern: RegExp, timeoutMs?: number) =>
    void (await daemon.waitFor(pattern, timeoutMs))
  if (options.waitForPublish ?? true) await waitFor(/published \d+ files/)
  return {
    name: options.name,
    port,
    dir,
    // Its own port on loopback: https:// with the key its callers pin, unless it runs with --plaintext.
    url: `${key ? 'https' : 'http'}://127.0.0.1:${port}`,
    key,
    child: daemon.child,
    output: daemon.output,
    cli: (args, cliOptions) =>
      runCli([...args, '--port', String(port)], { ...env, ...cliOptions?.env }, peer, cliOptions?.timeoutMs),
    stop: daemon.stop,
    waitFor,
  }
}

/**
 * Puts `content` in a shared folder as `name` in one step: written whole under a hidden name (the
 * watcher skips dotfiles), then renamed, so a daemon never indexes it half-written (64 MiB takes long
 * enough on a loaded machine for a watcher to fire mid-write and publish a hash of part of it).
 */
export function placeFile(dir: string, name: string, content: Buffer) {
  const hidden = join(dir, `.${name}.writing`)
  writeFileSync(hidden, content)
  renameSync(hidden, join(dir, name))
}

/** A `wrap` that runs the process with a file-size limit: writes past `bytes` fail with EFBIG. */
export const underFileSizeLimit = (bytes: number) => {
  if (bytes % 1024 !== 0) throw new Error('ulimit -f counts 1024-byte blocks')
  return ['bash', '-c', `ulimit -f ${bytes / 1024} && exec "$0" "$@"`]
}

/**
 * A `wrap` that gives the process a disk of its own: a tmpfs of `bytes` mounted over `dir` in a private
 * mount namespace (root only), so writes past its size fail with ENOSPC as on a full disk. Other
 * processes see that disk at `/proc/<pid>/root<dir>`.
 */
export const onSmallDisk = (dir: string, bytes: number) => [
  'unshare',
  '--mount',
  '--propagation',
  'private',
  'bash',
  '-c',
  `mount -t tmpfs -o size=${Math.ceil(bytes / 1024)}k tmpfs '${dir}' && exec "$0" "$@"`,
]

/** Why `onSmallDisk` cannot work here, or undefined when it can. */
export function smallDiskUnavailable(): string | undefined {
  const probe = mkdtempSync(join(tmpdir(), 'peerdir-disk-probe-'))
  const [command, ...args] = onSmallDisk(probe, 1024 * 1024)
  const result = spawnSync(command as string, [...args, 'true'])
  rmSync(probe, { recursive: true, force: true })
  if (result.error) return `${result.error.message} (unshare from util-linux is needed)`
  if (result.status !== 0)
    return `cannot mount a tmpfs in a private namespace: ${String(result.stderr).trim()}`
  return undefined
}
