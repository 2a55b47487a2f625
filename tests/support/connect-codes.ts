import { type Code, ConnectError } from '@connectrpc/connect'

/** The Connect code a call ends with, or 'ok': what a refusal test compares. */
export async function codeOf(call: Promise<unknown>): Promise<Code | 'ok'> {
  try {
    await call
    return 'ok'
  } catch (err) {
    return ConnectError.from(err).code
  }
}
