import { Command, InvalidArgumentError, Option } from 'commander'
import { connectDaemon, type DaemonConnection, DEFAULT_PORT, portFrom } from './daemon-client.ts'

/** A command that talks to a running daemon: --port (env PEER_PORT) picks which one. */
export function daemonCommand(name: string, description: string) {
  return new Command(name)
    .description(description)
    .addOption(
      new Option('--port <port>', 'the port the daemon was started with')
        .env('PEER_PORT')
        .default(String(DEFAULT_PORT)),
    )
}

/** A parser for a numeric option: a whole number from `min` to `max`, or a usage error saying so. */
export const wholeNumber = (min: number, max: number) => (value: string) => {
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || n < min || n > max)
    throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`)
  return n
}

export const jsonOption = () => new Option('--json', 'print one JSON document on stdout')

export function daemonFor(opts: { port?: string }): DaemonConnection {
  return connectDaemon(portFrom(opts.port))
}
