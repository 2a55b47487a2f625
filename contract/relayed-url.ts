/**
 * A peer that nobody can dial registers with a relay (`peer relay`) and publishes
 * `<relay URL>/relayed/<username>`; callers use it as any peer's URL. The shape is how everyone (the
 * dashboard, `peer peers`, downloaders that prefer direct sources) tells that a peer is relayed; it is
 * what the peer says of itself, so it may lie, and only ever decides an order or a label.
 */
const RELAYED_PATH = /^\/relayed\/([A-Za-z0-9._-]{1,64})\/?$/

export function relayedUrl(relayUrl: string, username: string): string {
  return `${relayUrl.replace(/\/+$/, '')}/relayed/${username}`
}

export function isRelayedUrl(url: string): boolean {
  return relayedUsername(url) !== undefined
}

/** The username a relayed URL reaches, if it is one. */
export function relayedUsername(url: string): string | undefined {
  try {
    return relayedPathUsername(new URL(url).pathname)
  } catch {
    return undefined
  }
}

/** The username a relayed URL's path (`/relayed/<username>`) names, if it is one. */
export const relayedPathUsername = (pathname: string): string | undefined => RELAYED_PATH.exec(pathname)?.[1]
