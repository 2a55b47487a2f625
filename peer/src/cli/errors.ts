import { ControlError, DaemonUnreachable, DaemonWentAway } from './control-client.ts'

/** Exit codes (README, "Peers and the `peer` CLI"): 0 done, 1 failed, 2 bad usage, 3 nothing found. */
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
export function toCliError(err: unknown, port: number): CliError {
  if (err instanceof CliError) return err
  if (err instanceof DaemonUnreachable) {
    return new CliError(
      `no peer daemon answers on port ${port}; start one with \`peer start --port ${port} ...\``,
    )
  }
  if (err instanceof DaemonWentAway) {
    return new CliError(
      `the peer daemon on port ${port} went away mid-command; start it again and rerun the command (a download resumes from its verified chunks)`,
    )
  }
  if (err instanceof ControlError) {
    switch (err.code) {
      case 'not_found':
      case 'http_404':
        return new CliError(err.message, EXIT.notFound)
      case 'invalid_argument':
        return new CliError(err.message, EXIT.usage)
      case 'unavailable':
        return new CliError(
          `${err.message.replace(/\.$/, '')}; check that the directory is running and try again`,
        )
      case 'permission_denied':
        return new CliError(`${err.message} (are you the user who started it?)`)
      default:
        return new CliError(err.message)
    }
  }
  return new CliError(err instanceof Error ? err.message : String(err))
}
