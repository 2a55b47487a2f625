import { Code, ConnectError } from '@connectrpc/connect'

/**
 * Where the credential for calling one peer comes from: a call token the directory minted for that peer
 * alone (README "Tokens"), so a peer never sees anything it could replay to the directory or to another
 * peer. `token` may answer undefined (not logged in, directory down): the call goes without one, which
 * only an --open peer serves.
 */
export type CallCredentials = {
  token: (audience: string) => Promise<string | undefined>
  /** The audience refused `token`'s last answer: the next must be fresh. */
  refused: (audience: string) => void
}

export type AuthHeaders = { authorization: string } | undefined

/**
 * Makes a call to `audience` with its call token; one the callee refuses (it expired, or the session it
 * was minted in was renewed) is replaced once, and the call made again, before its failure counts.
 * Options: `token`, how the token is asked for (the credentials' own by default: a caller may translate
 * the directory's errors, which are thrown as they are); `failed`, what a call's failure becomes.
 */
export async function withCallToken<T>(
  credentials: CallCredentials,
  audience: string,
  call: (headers: AuthHeaders) => Promise<T>,
  options: {
    signal?: AbortSignal
    token?: () => Promise<string | undefined>
    failed?: (err: unknown) => never
  } = {},
): Promise<T> {
  const token = options.token ?? (() => credentials.token(audience))
  const headers = async (): Promise<AuthHeaders> => {
    const held = await token()
    return held ? { authorization: `Bearer ${held}` } : undefined
  }
  const failed =
    options.failed ??
    ((err: unknown) => {
      throw err
    })
  const first = await headers()
  try {
    return await call(first)
  } catch (err) {
    if (options.signal?.aborted || ConnectError.from(err).code !== Code.Unauthenticated) return failed(err)
    credentials.refused(audience)
  }
  const fresh = await headers()
  return call(fresh).catch(failed)
}

/**
 * withCallToken for a streamed answer: a refusal comes before the first item, so only until then is a
 * fresh token worth one more try; a failure after it is the stream's own.
 */
export async function* streamWithCallToken<T>(
  credentials: CallCredentials,
  audience: string,
  call: (headers: AuthHeaders) => AsyncIterable<T>,
  signal: AbortSignal,
): AsyncGenerator<T> {
  const { iterator, first } = await withCallToken(
    credentials,
    audience,
    async (headers) => {
      const iterator = call(headers)[Symbol.asyncIterator]()
      return { iterator, first: await iterator.next() }
    },
    { signal },
  )
  try {
    for (let next = first; !next.done; next = await iterator.next()) yield next.value
  } finally {
    await iterator.return?.()
  }
}
