import { closedUnderRequest } from '../../peer/src/wire/closed-under-request.ts'

/**
 * fetch, sent once more on another connection when its kept-alive connection was closed under it before
 * any answer (see closedUnderRequest), as the daemon's directory client does. The body must be one
 * that can be sent twice (a string, not a stream).
 */
export async function fetchResending(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init)
  } catch (err) {
    if (!closedUnderRequest(err)) throw err
    return fetch(url, init)
  }
}
