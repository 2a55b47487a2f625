// What the dashboard shows and how it words it, shared by the server-rendered page (view.tsx) and the
// browser script (browser.ts), so both render the same text and links. No JSX, no DOM, no server code.

import { isRelayedUrl } from '../../../contract/relayed-url.ts'
import { ORDERS, type Order, PEER_SORTS, type PeerSort } from '../peer-order.ts'

/** What the page shows; it lives in the query string, so a reload or a shared link keeps it. */
export type DashboardView = {
  q: string
  sort: PeerSort
  order: Order
  state: 'up' | 'down' | undefined
  offset: number
}

export const PAGE_SIZE = 50
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`
}

export function ago(iso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86_400)} d ago`
}

/** A link to the view with `change` applied; defaults stay out of the URL. */
export function hrefFor(view: DashboardView, change: Partial<DashboardView>): string {
  const next = { ...view, ...change }
  const params = new URLSearchParams()
  if (next.q) params.set('q', next.q)
  if (next.state) params.set('state', next.state)
  if (next.sort !== 'username') params.set('sort', next.sort)
  if (next.order !== 'asc') params.set('order', next.order)
  if (next.offset > 0) params.set('offset', String(next.offset))
  const query = params.toString()
  return query ? `/?${query}` : '/'
}

/** A result's live holders, all of them (sourceCount), though the answer lists only a sample. */
/** Said after a peer's URL when it is reached through a relay (`peer start --relay`). */
export const reachedText = (url: string) => (isRelayedUrl(url) ? ' via relay' : '')

/** Whether a peer's links are encrypted: it listed a TLS key (pinned by downloaders) or serves plaintext. */
export const linkText = (peer: { url: string; key: string | null }) =>
  peer.url === '' ? '' : peer.key ? ' · encrypted' : ' · plaintext'

export const sourcesText = (count: number) => `${count} live source${count === 1 ? '' : 's'}`

export const resultsText = (count: number, q: string) =>
  `${count === 0 ? 'No' : count} result${count === 1 ? '' : 's'} with a live source for "${q}"`

export const pageText = (offset: number, shown: number, total: number) =>
  total === 0 ? 'No peers' : `${offset + 1}–${offset + shown} of ${total}`

/** Who holds a content, in a few words: the first three names and how many more. */
/** Said of a result whose sha256 comes in several variants (holders that disagree on its metadata). */
export const variantText = (count: number) =>
  `one of ${count} variants of this sha256 (holders disagree on its manifest or size); peer get tries each and keeps the one that verifies`

export function holdersText(result: { sourceCount: number; sources: { username: string }[] }): string {
  const names = result.sources.slice(0, 3).map((source) => source.username)
  const more = result.sourceCount - names.length
  return `from ${names.join(', ')}${more > 0 ? ` and ${more} more` : ''}`
}

/** The view a query string asks for; anything unknown or malformed falls back to the default. */
export function viewFromQuery(search: string): DashboardView {
  const params = new URLSearchParams(search)
  const pick = <T extends string>(value: string | null, allowed: readonly T[], fallback: T): T =>
    allowed.includes(value as T) ? (value as T) : fallback
  const offset = Number.parseInt(params.get('offset') ?? '0', 10)
  const state = params.get('state')
  return {
    q: (params.get('q') ?? '').trim(),
    sort: pick(params.get('sort'), PEER_SORTS, 'username'),
    order: pick(params.get('order'), ORDERS, 'asc'),
    state: state === 'up' || state === 'down' ? state : undefined,
    offset: Number.isFinite(offset) && offset > 0 ? offset : 0,
  }
}

/** Where a result's best-matching holder keeps it ("" at the top: nothing said). */
export const placeText = (path: string) => (path ? `in ${path}` : '')

/** The command that fetches a user's folder (or file) by its peer path. */
export const peerGetLine = (username: string, path: string) => `peer get ${username}/${path}`

/** A folder below `path`. */
export const childPath = (path: string, name: string) => (path ? `${path}/${name}` : name)

export const folderText = (files: number, bytes: number) =>
  `${files} file${files === 1 ? '' : 's'}, ${formatBytes(bytes)}`
