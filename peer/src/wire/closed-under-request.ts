/**
 * Whether a fetch failed because its connection was closed under it before any answer: HTTP/1.1
 * keep-alive's own race, where the server closes a connection it saw idle just as the client sends on
 * it (the client, short of CPU, had not yet read the close). The kernel answers the send with a reset or
 * a broken pipe, and undici says `UND_ERR_SOCKET` ("other side closed"). Such a request is sent once
 * more, on another connection, as browsers do; a server that is really gone fails that one too.
 */
export function closedUnderRequest(err: unknown): boolean {
  const code = (err as { cause?: { code?: string } }).cause?.code
  return err instanceof TypeError && (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET')
}
