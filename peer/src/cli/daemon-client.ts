import { readControlInfo, stateDirFor } from '../daemon/state-dir.ts'
import { ControlClient } from './control-client.ts'
import { CliError } from './errors.ts'

export const DEFAULT_PORT = 50051

export const portFrom = (value: string | undefined): number => {
  const port = Number(value ?? process.env.PEER_PORT ?? DEFAULT_PORT)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CliError('--port must be 1-65535', 2)
  return port
}

export type DaemonConnection = { client: ControlClient; port: number }

/** The daemon started with `--port` on this machine, reached with the token in its state directory. */
export function connectDaemon(port: number): DaemonConnection {
  const info = readControlInfo(stateDirFor(port))
  if (!info) {
    throw new CliError(
      `no peer daemon was started on port ${port} by this user; start one with \`peer start --port ${port} ...\``,
    )
  }
  return { client: new ControlClient(info.socket, info.token), port }
}
