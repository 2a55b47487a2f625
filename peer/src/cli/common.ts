import { Command, Option } from 'commander'
import { connectDaemon, type DaemonConnection, portFrom } from './daemon-client.ts'

/** A command that talks to a running daemon: --port (env PEER_PORT) picks which one. */
export function daemonCommand(name: string, description: string) {
  return new Command(name)
    .description(description)
    .addOption(
      new Option('--port <port>', 'the port the daemon was started with').env('PEER_PORT').default('50051'),
    )
}

export const jsonOption = () => new Option('--json', 'print one JSON document on stdout')

export function daemonFor(opts: { port?: string }): DaemonConnection {
  return connectDaemon(portFrom(opts.port))
}
