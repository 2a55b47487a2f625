import { Code, ConnectError } from '@connectrpc/connect'
import { expect, it } from 'vitest'
import {
  type AuthHeaders,
  type CallCredentials,
  streamWithCallToken,
  withCallToken,
} from '../../peer/src/wire/call-token.ts'

/** Hands out token-1, token-2, …: a refused one is replaced by the next. */
function numberedTokens() {
  let issued = 1
  const refusals: string[] = []
  const credentials: CallCredentials = {
    token: async () => `token-${issued}`,
    refused: (audience) => {
      refusals.push(audience)
      issued++
    },
  }
  return { credentials, refusals }
}

/** A callee that accepts only `accepted`, refusing any other token as expired. */
const callee =
  (accepted: string, seen: AuthHeaders[]) =>
  async (headers: AuthHeaders): Promise<string> => {
    seen.push(headers)
    if (headers?.authorization !== `Bearer ${accepted}`)
      throw new ConnectError('the call token expired', Code.Unauthenticated)
    return 'answered'
  }

it('replaces a refused call token once and calls again', async () => {
  const { credentials, refusals } = numberedTokens()
  const seen: AuthHeaders[] = []
  expect(await withCallToken(credentials, 'bob', callee('token-2', seen))).toBe('answered')
  expect(seen).toEqual([{ authorization: 'Bearer token-1' }, { authorization: 'Bearer token-2' }])
  expect(refusals).toEqual(['bob'])
})

it('fails when the fresh token is refused too, and retries no other failure', async () => {
  const { credentials } = numberedTokens()
  const seen: AuthHeaders[] = []
  await expect(withCallToken(credentials, 'bob', callee('token-9', seen))).rejects.toThrow(/expired/)
  expect(seen).toHaveLength(2)
  let calls = 0
  const unavailable = async () => {
    calls++
    throw new ConnectError('down', Code.Unavailable)
  }
  await expect(withCallToken(credentials, 'bob', unavailable)).rejects.toThrow(/down/)
  expect(calls).toBe(1)
})

it('turns the failure into what the caller says, but leaves the token’s own failure as it is', async () => {
  const { credentials } = numberedTokens()
  const failed = (err: unknown): never => {
    throw new Error(`wrapped: ${ConnectError.from(err).rawMessage}`)
  }
  await expect(withCallToken(credentials, 'bob', callee('token-9', []), { failed })).rejects.toThrow(
    'wrapped: the call token expired',
  )
  const token = async (): Promise<string> => {
    throw new ConnectError('the directory refused this peer', Code.Unauthenticated)
  }
  await expect(withCallToken(credentials, 'bob', callee('token-1', []), { token, failed })).rejects.toThrow(
    /^\[unauthenticated\] the directory refused this peer$/,
  )
})

it('retries a stream only while nothing has arrived', async () => {
  const { credentials, refusals } = numberedTokens()
  const signal = new AbortController().signal
  const seen: AuthHeaders[] = []
  async function* refusedAtOnce(headers: AuthHeaders) {
    seen.push(headers)
    if (headers?.authorization !== 'Bearer token-2') throw new ConnectError('expired', Code.Unauthenticated)
    yield 1
    yield 2
  }
  const items: number[] = []
  for await (const item of streamWithCallToken(credentials, 'bob', refusedAtOnce, signal)) items.push(item)
  expect(items).toEqual([1, 2])
  expect(seen).toHaveLength(2)

  let calls = 0
  async function* refusedLater() {
    calls++
    yield 1
    throw new ConnectError('expired', Code.Unauthenticated)
  }
  const later: number[] = []
  await expect(async () => {
    for await (const item of streamWithCallToken(credentials, 'bob', refusedLater, signal)) later.push(item)
  }).rejects.toThrow(/expired/)
  expect(later).toEqual([1])
  expect(calls).toBe(1)
  expect(refusals).toEqual(['bob'])
})
