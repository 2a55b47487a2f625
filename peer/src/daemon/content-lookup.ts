import { Code, ConnectError } from '@connectrpc/connect'
import { type DirectoryClient, DirectoryError, type Result } from '../wire/directory-client.ts'
import type { DirectorySession } from './directory-session.ts'
import type { Wanted } from './downloads.ts'

/** Directory failures as Connect codes the CLI turns into exit codes and one-line messages. */
export function directoryFailure(err: unknown): never {
  if (err instanceof DirectoryError) {
    if (err.unreachable) throw new ConnectError(err.message, Code.Unavailable)
    if (err.status === 401)
      throw new ConnectError(`the directory refused this peer: ${err.message}`, Code.Unauthenticated)
    throw new ConnectError(err.message, Code.FailedPrecondition)
  }
  throw err
}

/**
 * The contents among `results` by sha256 with their distinct live holders (a holder offers one variant
 * of a sha256, so its variants' counts add up), most first; a tie keeps the directory's order.
 */
function mostHeld(results: Result[]): { sha256: string; holders: number }[] {
  const holders = new Map<string, number>()
  for (const r of results) holders.set(r.sha256, (holders.get(r.sha256) ?? 0) + r.sourceCount)
  return [...holders].map(([sha256, n]) => ({ sha256, holders: n })).sort((a, b) => b.holders - a.holders)
}

/** Finds what a `peer get`, `peer cat` or gateway request names on the network. */
export function contentLookup(daemon: { directory: DirectoryClient; session: DirectorySession }) {
  /** The content's variants by hash, in the directory's order (the order to try them in). */
  async function variantsOf(sha256: string, asked: string = sha256): Promise<Wanted> {
    const { directory, session } = daemon
    const found = await directory.file(sha256, session.token).catch(directoryFailure)
    if (!found || found.variants.length === 0)
      throw new ConnectError(`nobody on the network has ${asked}`, Code.NotFound)
    return { sha256, variants: found.variants }
  }

  /**
   * A hash, or a name: an exact (case-insensitive) name wins, then a single match. One content may
   * come as several variants (holders that disagree on its metadata): they count as one match, and
   * all of its variants are fetched by hash to be tried in turn. Several contents under the exact
   * name (anyone may publish any name) are no failure: the one most distinct live holders share is
   * taken, the directory's order breaking a tie (the oldest account first), and `choice` says so.
   */
  async function resolve(target: string): Promise<Wanted & { choice?: string }> {
    const { directory, session } = daemon
    if (/^[0-9a-f]{64}$/i.test(target)) return variantsOf(target.toLowerCase(), target)
    const { results } = await directory.search(target, 50, session.token).catch(directoryFailure)
    const exact = mostHeld(results.filter((r) => r.name.toLowerCase() === target.toLowerCase()))
    const all = mostHeld(results)
    const [first, second] = exact.length > 0 ? exact : all
    if (first && (!second || exact.length > 0)) {
      const wanted = await variantsOf(first.sha256, `"${target}"`)
      if (!second) return wanted
      return {
        ...wanted,
        choice: `${exact.length} contents are named "${target}"; took ${first.sha256}, held by ${first.holders} live peers (the next by ${second.holders})`,
      }
    }
    if (all.length === 0) throw new ConnectError(`nothing on the network matches "${target}"`, Code.NotFound)
    throw new ConnectError(
      `${all.length} contents match "${target}"; run \`peer search\` and get one by its sha256`,
      Code.InvalidArgument,
    )
  }

  return { variantsOf, resolve }
}
