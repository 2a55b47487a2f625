import { Code, ConnectError } from '@connectrpc/connect'
import type { SourceReport } from './source-pool.ts'

/**
 * Exit code 3 territory: nobody live can serve what is still missing (of one variant of the content),
 * with every source tried and why it was dropped.
 */
export class NoSourcesError extends Error {
  override readonly name = 'NoSourcesError'
  readonly sources: SourceReport[]

  constructor(message: string, sources: SourceReport[] = []) {
    super(message)
    this.sources = sources
  }
}

/** Every chunk matched the manifest, but the whole file is not the sha256: the manifest is false. */
export class FalseManifestError extends Error {
  override readonly name = 'FalseManifestError'
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
