// The dashboard's browser script, built into script.gen.ts and served as /dashboard.js. It takes over
// the server-rendered page: live numbers, search as you type, sorting and paging without reloads.
// Everything that comes from the network reaches the page through textContent or attributes, never as
// HTML. Its words and links come from view-model.ts, as the server's do.
import type { Peer, PeerPage, Result, SearchResponse, Stats } from '../../../contract/api-types.ts'
import { variantCounts, variantKey } from '../../../contract/variant.ts'
import { api, LoginRequired, readsNeedLogin, showLogin, TOKEN_KEY } from './api.ts'
import { browseClicked } from './browse-panel.ts'
import { $, copy, copyLine, el, setText } from './dom.ts'
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
  resultsText,
  sourcesText,
  variantText,
  viewFromQuery,
} from './view-model.ts'

const POLL_MS = 3000
const SEARCH_DELAY_MS = 250

const searchBox = $<HTMLInputElement>('search')
const stateFilter = $<HTMLSelectElement>('peer-state')
const network = $('network')
const liveText = $('live').textContent ?? ''
document.documentElement.classList.add('js')

const view: DashboardView = viewFromQuery(location.search)
let total = 0
const href = (change: Partial<DashboardView>) => hrefFor(view, change)
const remember = () => history.replaceState(null, '', href({}))

async function refreshStats() {
  const stats = await api<Stats>('/v1/stats')
  setText($('stat-peers'), `${stats.peersUp} / ${stats.peersTotal}`)
  setText($('stat-files'), String(stats.files))
  setText($('stat-unique'), String(stats.uniqueFiles))
  setText($('stat-bytes'), formatBytes(stats.bytes))
}

const relayed = (url: string) => el('span', { class: 'muted relayed', text: reachedText(url) })

const peerRow = (peer: Peer) =>
  el(
    'tr',
    { 'data-peer': peer.username },
    el('td', { text: peer.username }),
    el(
      'td',
      {},
      el('span', { class: `state ${peer.state === 'up' ? 'up' : 'down'}`, text: peer.state }),
      ' ',
      el('span', {
        class: 'muted seen',
        title: peer.lastSeen,
        text: `last seen ${ago(peer.lastSeen, Date.now())}`,
      }),
    ),
    el(
      'td',
      { class: 'hide-narrow' },
      el('code', { text: peer.url || '(viewer only)' }),
      relayed(peer.url),
      el('span', { class: 'muted link', title: peer.key ?? 'no key: plaintext', text: linkText(peer) }),
    ),
    el('td', { class: 'num', text: String(peer.files) }),
    el(
      'td',
      {},
      el('button', {
        type: 'button',
        class: 'js-only',
        'data-browse': peer.username,
        'aria-label': `Browse ${peer.username}’s folders`,
        text: 'Browse',
      }),
    ),
  )

function updateControls(shown: number) {
  setText($('peer-page'), pageText(view.offset, shown, total))
  const links: [HTMLAnchorElement, boolean, number][] = [
    [$<HTMLAnchorElement>('peer-prev'), view.offset > 0, Math.max(0, view.offset - PAGE_SIZE)],
    [$<HTMLAnchorElement>('peer-next'), view.offset + shown < total, view.offset + PAGE_SIZE],
  ]
  for (const [link, enabled, offset] of links) {
    link.href = href({ offset })
    if (enabled) link.removeAttribute('aria-disabled')
    else link.setAttribute('aria-disabled', 'true')
  }
  for (const th of document.querySelectorAll<HTMLElement>('th[data-sort]')) {
    const sort = th.dataset.sort as DashboardView['sort']
    const active = sort === view.sort
    th.setAttribute('aria-sort', active ? (view.order === 'asc' ? 'ascending' : 'descending') : 'none')
    const first = th.dataset.first === 'desc' ? 'desc' : 'asc'
    const order = active ? (view.order === 'asc' ? 'desc' : 'asc') : first
    const link = th.querySelector('a')
    if (link) link.href = href({ sort, order, offset: 0 })
  }
  stateFilter.value = view.state ?? ''
}

function peersQuery() {
  const params = new URLSearchParams({
    limit: String(PAGE_SIZE),
    offset: String(view.offset),
    sort: view.sort,
    order: view.order,
  })
  if (view.state) params.set('state', view.state)
  return params.toString()
}

async function refreshPeers() {
  const asked = peersQuery()
  const page = await api<PeerPage>(`/v1/peers?${asked}`)
  if (asked !== peersQuery()) return // the user moved on while this page was on its way
  total = page.total
  $('peer-rows').replaceChildren(...page.peers.map(peerRow))
  updateControls(page.peers.length)
}

const resultItem = (result: Result, variants: number) =>
  el(
    'li',
    { class: 'result', 'data-sha256': result.sha256, 'data-variant': variantKey(result) },
    el('h3', { text: result.name }),
    ...(result.path ? [el('p', { class: 'row muted place', text: placeText(result.path) })] : []),
    el(
      'p',
      { class: 'row' },
      el('span', { text: formatBytes(result.size) }),
      el('span', { class: 'sources', text: sourcesText(result.sourceCount) }),
      el('span', { class: 'muted holders', text: holdersText(result) }),
    ),
    el(
      'p',
      { class: 'row' },
      el('span', { class: 'muted', text: 'sha256' }),
      copyLine(result.sha256, `Copy the full sha256 of ${result.name}`, result.sha256.slice(0, 12)),
    ),
    ...(variants > 1
      ? [
          el(
            'p',
            { class: 'row variant' },
            el('span', { class: 'muted', text: 'manifest' }),
            el('code', { title: result.manifest, text: result.manifest.slice(0, 12) }),
            el('span', { class: 'muted', text: variantText(variants) }),
          ),
        ]
      : []),
    el(
      'p',
      { class: 'row' },
      copyLine(`peer get ${result.sha256}`, `Copy the peer get command for ${result.name}`),
    ),
  )

function showResults(q: string, results: Result[], live: boolean) {
  const out = $('results')
  const items = [...out.children] as HTMLElement[]
  // Keyed by variant: one sha256 may come twice, with different manifests.
  const same =
    items.length === results.length &&
    items.every((li, i) => li.dataset.variant === (results[i] && variantKey(results[i])))
  if (same) {
    // A poll updates counts in place, so a focused Copy button keeps its focus.
    results.forEach((result, i) => {
      setText(items[i]?.querySelector('.sources') ?? null, sourcesText(result.sourceCount))
      setText(items[i]?.querySelector('.holders') ?? null, holdersText(result))
    })
  } else if (live && out.contains(document.activeElement)) {
    return
  } else {
    const counts = variantCounts(results)
    out.replaceChildren(...results.map((result) => resultItem(result, counts.get(result.sha256) ?? 1)))
  }
  setText($('search-status'), resultsText(results.length, q))
}

async function search(live = false) {
  const q = searchBox.value.trim()
  if (!live && q !== view.q) {
    view.q = q
    remember()
  }
  if (!q) {
    $('results').replaceChildren()
    $('search-status').textContent = ''
    return
  }
  const { results } = await api<SearchResponse>(`/v1/search?${new URLSearchParams({ q, limit: '50' })}`)
  if (q === searchBox.value.trim()) showResults(q, results, live)
}

let searchTimer: ReturnType<typeof setTimeout> | undefined
searchBox.addEventListener('input', () => {
  clearTimeout(searchTimer)
  searchTimer = setTimeout(() => search().catch(report), SEARCH_DELAY_MS)
})
$('search-form').addEventListener('submit', (event) => {
  event.preventDefault()
  clearTimeout(searchTimer)
  search().catch(report)
})
stateFilter.addEventListener('change', () => {
  const state = stateFilter.value
  view.state = state === 'up' || state === 'down' ? state : undefined
  view.offset = 0
  remember()
  refreshPeers().catch(report)
})
network.addEventListener('click', async (event) => {
  const target = event.target as Element
  if (browseClicked(target, report)) return
  const link = target.closest<HTMLAnchorElement>('a[data-nav]')
  if (link) {
    event.preventDefault()
    if (link.getAttribute('aria-disabled') === 'true') return
    const next = viewFromQuery(new URL(link.href).search)
    Object.assign(view, { sort: next.sort, order: next.order, offset: next.offset, state: next.state })
    remember()
    refreshPeers().catch(report)
    return
  }
  const button = target.closest<HTMLButtonElement>('button[data-copy]')
  if (button) {
    button.textContent = (await copy(button.dataset.copy ?? '')) ? 'Copied' : 'Copy failed'
    setTimeout(() => {
      button.textContent = 'Copy'
    }, 1500)
  }
})
$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  $('login-error').textContent = ''
  const password = $<HTMLInputElement>('login-password')
  // No url: a viewer session that may read but leaves the peer's address and lease as they are.
  const response = await fetch('/v1/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: $<HTMLInputElement>('login-user').value, password: password.value }),
  })
  const body = (await response.json().catch(() => undefined)) as
    | { token?: string; error?: { message?: string } }
    | undefined
  if (!response.ok || !body?.token) {
    $('login-error').textContent = body?.error?.message ?? `Login failed (HTTP ${response.status}).`
    return
  }
  sessionStorage.setItem(TOKEN_KEY, body.token)
  password.value = ''
  showLogin(false)
  tick()
})

let failing = false
function report(err: unknown) {
  if (err instanceof LoginRequired) return
  failing = true
  $('live').textContent = `Could not update (${err instanceof Error ? err.message : String(err)}); retrying.`
}
function recovered() {
  if (!failing) return
  failing = false
  $('live').textContent = liveText
}
function tick() {
  // Members only: nothing to ask before the login, which would only answer 401.
  if (readsNeedLogin && !sessionStorage.getItem(TOKEN_KEY)) return
  const work = [refreshStats()]
  if (!network.hidden) {
    work.push(refreshPeers())
    if (searchBox.value.trim()) work.push(search(true))
  }
  Promise.all(work).then(recovered, report)
}

if (readsNeedLogin) showLogin(!sessionStorage.getItem(TOKEN_KEY))
tick()
setInterval(() => {
  if (!document.hidden) tick()
}, POLL_MS)
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) tick()
})
