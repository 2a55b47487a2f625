import type { FC } from 'hono/jsx'
import type { Peer, Result } from '../../../contract/schemas.ts'
import { variantKey } from '../../../contract/variant.ts'
import type { PeerSort } from '../peer-order.ts'
import type { NetworkStats } from '../store/peers.ts'
import {
  ago,
  type DashboardView,
  formatBytes,
  holdersText,
  hrefFor,
  linkText,
  PAGE_SIZE,
  pageText,
  placeText,
  reachedText,
  sourcesText,
  variantText,
} from './view-model.ts'

const Stat: FC<{ id: string; label: string; value: string }> = ({ id, label, value }) => (
  <li>
    <span class="value" id={id}>
      {value}
    </span>
    <span class="label">{label}</span>
  </li>
)

/** Without stats (reads need a token) every figure is a dash until the script loads them after login. */
export const StatsList: FC<{ stats: NetworkStats | undefined }> = ({ stats }) => (
  <ul class="stats">
    <Stat
      id="stat-peers"
      label="peers up / total"
      value={stats ? `${stats.peersUp} / ${stats.peersTotal}` : '–'}
    />
    <Stat id="stat-files" label="files shared" value={stats ? String(stats.files) : '–'} />
    <Stat id="stat-unique" label="distinct contents" value={stats ? String(stats.uniqueFiles) : '–'} />
    <Stat id="stat-bytes" label="total size" value={stats ? formatBytes(stats.bytes) : '–'} />
  </ul>
)

const CopyLine: FC<{ text: string; label: string; display?: string }> = ({ text, label, display }) => (
  <span class="copy">
    <code title={text} data-copy={text}>
      {display ?? text}
    </code>
    <button type="button" class="js-only" aria-label={label} data-copy={text}>
      Copy
    </button>
  </span>
)

/** One search result; `variants` is how many results share its sha256 (more than one: say which manifest). */
export const ResultItem: FC<{ result: Result; variants: number }> = ({ result, variants }) => {
  return (
    <li class="result" data-sha256={result.sha256} data-variant={variantKey(result)}>
      <h3>{result.name}</h3>
      {result.path ? <p class="row muted place">{placeText(result.path)}</p> : null}
      <p class="row">
        <span>{formatBytes(result.size)}</span>
        <span class="sources">{sourcesText(result.sourceCount)}</span>
        <span class="muted holders">{holdersText(result)}</span>
      </p>
      <p class="row">
        <span class="muted">sha256</span>
        <CopyLine
          text={result.sha256}
          display={result.sha256.slice(0, 12)}
          label={`Copy the full sha256 of ${result.name}`}
        />
      </p>
      {variants > 1 ? (
        <p class="row variant">
          <span class="muted">manifest</span>
          <code title={result.manifest}>{result.manifest.slice(0, 12)}</code>
          <span class="muted">{variantText(variants)}</span>
        </p>
      ) : null}
      <p class="row">
        <CopyLine text={`peer get ${result.sha256}`} label={`Copy the peer get command for ${result.name}`} />
      </p>
    </li>
  )
}

export const PeerRow: FC<{ peer: Peer; now: number }> = ({ peer, now }) => (
  <tr data-peer={peer.username}>
    <td>{peer.username}</td>
    <td>
      <span class={`state ${peer.state}`}>{peer.state}</span>{' '}
      <span class="muted seen" title={peer.lastSeen}>
        last seen {ago(peer.lastSeen, now)}
      </span>
    </td>
    <td class="hide-narrow">
      <code>{peer.url || '(viewer only)'}</code>
      <span class="muted relayed">{reachedText(peer.url)}</span>
      <span class="muted link" title={peer.key ?? 'no key: plaintext'}>
        {linkText(peer)}
      </span>
    </td>
    <td class="num">{peer.files}</td>
    <td>
      <button
        type="button"
        class="js-only"
        data-browse={peer.username}
        aria-label={`Browse ${peer.username}’s folders`}
      >
        Browse
      </button>
    </td>
  </tr>
)

/** Counts and times sort biggest or newest first on a first click; a second click flips the order. */
export const SortHeader: FC<{
  view: DashboardView
  sort: PeerSort
  label: string
  first?: 'asc' | 'desc'
  numeric?: boolean
}> = ({ view, sort, label, first = 'asc', numeric }) => {
  const active = view.sort === sort
  const order = active ? (view.order === 'asc' ? 'desc' : 'asc') : first
  return (
    <th
      scope="col"
      data-sort={sort}
      data-first={first}
      class={numeric ? 'num' : undefined}
      aria-sort={active ? (view.order === 'asc' ? 'ascending' : 'descending') : 'none'}
    >
      <a href={hrefFor(view, { sort, order, offset: 0 })} data-nav="">
        {label}
      </a>
    </th>
  )
}

export const Pager: FC<{ view: DashboardView; shown: number; total: number }> = ({ view, shown, total }) => {
  const hasPrev = view.offset > 0
  const hasNext = view.offset + shown < total
  return (
    <nav class="pager" aria-label="Peer pages">
      <a
        id="peer-prev"
        data-nav=""
        href={hrefFor(view, { offset: Math.max(0, view.offset - PAGE_SIZE) })}
        aria-disabled={hasPrev ? undefined : 'true'}
      >
        ← Previous
      </a>
      <span id="peer-page" aria-live="polite">
        {pageText(view.offset, shown, total)}
      </span>
      <a
        id="peer-next"
        data-nav=""
        href={hrefFor(view, { offset: view.offset + PAGE_SIZE })}
        aria-disabled={hasNext ? undefined : 'true'}
      >
        Next →
      </a>
    </nav>
  )
}
