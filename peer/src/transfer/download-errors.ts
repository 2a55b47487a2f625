import { Code, ConnectError } from '@connectrpc/connect'

/** Exit code 3 territory: nobody live can serve what is still missing. */
export class NoSourcesError extends Error {
  override readonly name = 'NoSourcesError'
}

/** The disk, not a source, failed (full, too small for the file, read-only): verified chunks stay. */
export class LocalWriteError extends Error {
  override readonly name = 'LocalWriteError'

  constructor(what: string, cause: unknown) {
    super(`${what}: ${cause instanceof Error ? cause.message : String(cause)}`)
  }
}

/** Why a source was dropped, in words for `peer get`'s report. */
export function describeSourceFailure(err: unknown): string {
  if (err instanceof ConnectError) {
    if (err.code === Code.Unavailable || err.code === Code.Canceled)
      return 'unreachable or went away mid-transfer'
    if (err.code === Code.Unauthenticated) return `refused our token (${err.rawMessage})`
    if (err.code === Code.NotFound) return 'no longer has the file'
    return `${Code[err.code]}: ${err.rawMessage}`
  }
  return err instanceof Error ? err.message : String(err)
}
