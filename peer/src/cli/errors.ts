import { Code, ConnectError } from '@connectrpc/connect'

/** Exit codes of the SPEC: 0 done, 1 failed, 2 bad usage, 3 nothing found. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3 } as const

/** A failure the CLI reports as one line on stderr with a fitting exit code. */
export class CliError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode: number = EXIT.failed) {
    super(message)
    this.exitCode = exitCode
  }
}

/** Turns any error into the one line and exit code the user sees; never a stack trace. */
export function toCliError(err: unknown, port?: number): CliError {
  if (err instanceof CliError) return err
  if (err instanceof ConnectError) {
    const message = err.rawMessage
    switch (err.code) {
      case Code.NotFound:
        return new CliError(message, EXIT.notFound)
      case Code.InvalidArgument:
        return new CliError(message, EXIT.usage)
      case Code.Unavailable:
        if (/ECONNREFUSED|connect|closed|socket/i.test(message) && port !== undefined) {
          return new CliError(
            `no peer daemon answers on port ${port}; start one with \`peer start --port ${port} ...\``,
            EXIT.failed,
          )
        }
        return new CliError(
          `${message.replace(/\.$/, '')}; check that the directory is running and try again`,
          EXIT.failed,
        )
      case Code.Canceled:
        // The daemon reset the call: it was stopped or killed while answering.
        if (port !== undefined) {
          return new CliError(
            `the peer daemon on port ${port} went away mid-command; start it again and rerun the command (a download resumes from its verified chunks)`,
            EXIT.failed,
          )
        }
        return new CliError(message, EXIT.failed)
      case Code.PermissionDenied:
        return new CliError(`${message} (are you the user who started it?)`, EXIT.failed)
      default:
        return new CliError(message, EXIT.failed)
    }
  }
  return new CliError(err instanceof Error ? err.message : String(err), EXIT.failed)
}
