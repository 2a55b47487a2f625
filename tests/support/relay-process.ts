import type { ChildProcess } from 'node:child_process'
import { nodeBin, repoRoot } from './directory-process.ts'
import { peerBin } from './peer-process.ts'
import { startReadyProcess } from './ready-process.ts'

export type RelayProcess = {
  url: string
  port: number
  child: ChildProcess
  output: () => string
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/**
 * The relay's ready line: `relay listening on <host>:<port>, directory …`. Without a port the relay
 * starts on `--port 0` and the kernel's choice is the one the line names.
 */
const RELAY_READY = /relay listening on \S*:(?<port>\d+), directory/

/** `peer relay` as a real process on `host`, waited for until it listens. */
export async function startRelayProcess(options: {
  host: string
  directoryUrl: string
  port?: number
  args?: string[]
}): Promise<RelayProcess> {
  const relay = await startReadyProcess({
    name: 'relay',
    command: [
      ...[nodeBin, peerBin, 'relay', '--host', options.host],
      ...['--port', String(options.port ?? 0)],
      ...['--directory', options.directoryUrl, ...(options.args ?? [])],
    ],
    cwd: repoRoot,
    ready: RELAY_READY,
  })
  const host = options.host.includes(':') ? `[${options.host}]` : options.host
  return {
    url: `http://${host}:${relay.port}`,
    port: relay.port,
    child: relay.child,
    output: relay.output,
    stop: relay.stop,
  }
}
