import { closedUnderRequest } from '../../peer/src/wire/closed-under-request.ts'

/**
 * fetch, sent again on another connection when its kept-alive connection was closed under it before
 * any answer (see closedUnderRequest), as the daemon's directory client does: once by default, up to
 * `sends` times in all. The body must be one that can be sent twice (a string, not a stream).
 */
export async function fetchResending(
  url: string,
  init?: RequestInit,
  { sends = 2, onResend }: { sends?: number; onResend?: () => void } = {},
): Promise<Response> {
  for (let sent = 1; ; sent++) {
    try {
      return await fetch(url, init)
    } catch (err) {
      if (!closedUnderRequest(err) || sent === sends) throw err
      onResend?.()
    }
  }
}
