import { type ChildProcess, spawn } from 'node:child_process'
import { nodeBin, repoRoot } from './directory-process.ts'
import { freePort } from './free-port.ts'
import { own } from './owned-processes.ts'
import { peerBin } from './peer-process.ts'

export type RelayProcess = {
  url: string
  port: number
  child: ChildProcess
  output: () => string
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** `peer relay` as a real process on `host`, waited for until it listens. */
export async function startRelayProcess(options: {
  host: string
  directoryUrl: string
  port?: number
  args?: string[]
}): Promise<RelayProcess> {
  const port = options.port ?? (await freePort())
  const child = spawn(
    nodeBin,
    [
      peerBin,
      'relay',
      '--host',
      options.host,
      '--port',
      String(port),
      '--directory',
      options.directoryUrl,
      ...(options.args ?? []),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  own(child)
  let output = ''
  child.stdout?.on('data', (chunk) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk) => {
    output += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const deadline = Date.now() + 30_000
  while (!/relay listening/.test(output)) {
    if (child.exitCode !== null) throw new Error(`relay exited (${child.exitCode}):\n${output}`)
    if (Date.now() > deadline) throw new Error(`relay did not start in 30 s:\n${output}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url: `http://${options.host}:${port}`,
    port,
    child,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}
