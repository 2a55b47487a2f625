// The dashboard's browser script, served as /dashboard.js. Plain JS (no build step) that takes over the
// server-rendered page: live numbers, search as you type, sorting and paging without reloads. Everything
// that comes from the network reaches the page through textContent or attributes, never as HTML.
export const dashboardJs = `(() => {
  'use strict'
  const $ = (id) => document.getElementById(id)
  const TOKEN_KEY = 'peerdir-token'
  const POLL_MS = 3000
  const SOURCES_SHOWN = 64
  const PAGE_SIZE = Number(document.body.dataset.pageSize) || 50
  const LIVE_TEXT = $('live').textContent
  document.documentElement.classList.add('js')

  const fromQuery = (search) => {
    const p = new URLSearchParams(search)
    const pick = (value, allowed, fallback) => (allowed.includes(value) ? value : fallback)
    const offset = Number.parseInt(p.get('offset') || '0', 10)
    return {
      q: (p.get('q') || '').trim(),
      sort: pick(p.get('sort'), ['username', 'state', 'files', 'lastSeen'], 'username'),
      order: pick(p.get('order'), ['asc', 'desc'], 'asc'),
      state: pick(p.get('state'), ['up', 'down'], ''),
      offset: Number.isFinite(offset) && offset > 0 ? offset : 0,
    }
  }
  const view = fromQuery(location.search)
  let total = 0

  const hrefFor = (change) => {
    const next = { ...view, ...change }
    const p = new URLSearchParams()
    if (next.q) p.set('q', next.q)
    if (next.state) p.set('state', next.state)
    if (next.sort !== 'username') p.set('sort', next.sort)
    if (next.order !== 'asc') p.set('order', next.order)
    if (next.offset > 0) p.set('offset', String(next.offset))
    const query = p.toString()
    return query ? '/?' + query : '/'
  }
  const remember = () => history.replaceState(null, '', hrefFor({}))

  class LoginRequired extends Error {}
  const api = async (path) => {
    const headers = new Headers()
    const token = sessionStorage.getItem(TOKEN_KEY)
    if (token) headers.set('authorization', 'Bearer ' + token)
    const response = await fetch(path, { headers })
    if (response.status === 401 && document.body.dataset.readsNeedLogin === 'true') {
      sessionStorage.removeItem(TOKEN_KEY)
      showLogin(true)
      throw new LoginRequired()
    }
    const body = await response.json().catch(() => undefined)
    if (!response.ok) throw new Error(body && body.error ? body.error.message : 'HTTP ' + response.status)
    return body
  }

  const bytes = (n) => {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
    let i = 0
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
    return i === 0 ? n + ' B' : n.toFixed(n < 10 ? 2 : 1) + ' ' + units[i]
  }
  const ago = (iso) => {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
    if (s < 60) return s + ' s ago'
    if (s < 3600) return Math.round(s / 60) + ' min ago'
    if (s < 86400) return Math.round(s / 3600) + ' h ago'
    return Math.round(s / 86400) + ' d ago'
  }
  // Polls rewrite only what changed, so screen readers do not hear the same status every few seconds.
  const setText = (node, text) => { if (node.textContent !== text) node.textContent = text }
  const sourcesText = (n) => (n >= SOURCES_SHOWN ? SOURCES_SHOWN + '+' : n) + ' live source' + (n === 1 ? '' : 's')
  const holdersText = (sources) => {
    const names = sources.slice(0, 3).map((s) => s.username)
    const more = sources.length - names.length
    return 'from ' + names.join(', ') + (more > 0 ? ' and ' + more + ' more' : '')
  }
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'text') node.textContent = v
      else node.setAttribute(k, v)
    }
    node.append(...children)
    return node
  }
  const copyLine = (text, label, display) =>
    el('span', { class: 'copy' },
      el('code', { title: text, 'data-copy': text, text: display || text }),
      el('button', { type: 'button', class: 'js-only', 'aria-label': label, 'data-copy': text, text: 'Copy' }))

  const showLogin = (show) => {
    $('login').hidden = !show
    $('network').hidden = show
    if (show) $('login-user').focus()
  }

  async function refreshStats() {
    const s = await api('/v1/stats')
    setText($('stat-peers'), s.peersUp + ' / ' + s.peersTotal)
    setText($('stat-files'), String(s.files))
    setText($('stat-unique'), String(s.uniqueFiles))
    setText($('stat-bytes'), bytes(s.bytes))
  }

  const peerRow = (p) => el('tr', { 'data-peer': p.username },
    el('td', { text: p.username }),
    el('td', {},
      el('span', { class: 'state ' + (p.state === 'up' ? 'up' : 'down'), text: p.state }), ' ',
      el('span', { class: 'muted seen', title: p.lastSeen, text: 'last seen ' + ago(p.lastSeen) })),
    el('td', { class: 'hide-narrow' }, el('code', { text: p.url || '(viewer only)' })),
    el('td', { class: 'num', text: String(p.files) }))

  function updateControls(shown) {
    setText($('peer-page'), total === 0 ? 'No peers' : (view.offset + 1) + '–' + (view.offset + shown) + ' of ' + total)
    const links = [
      [$('peer-prev'), view.offset > 0, Math.max(0, view.offset - PAGE_SIZE)],
      [$('peer-next'), view.offset + shown < total, view.offset + PAGE_SIZE],
    ]
    for (const [link, enabled, offset] of links) {
      link.href = hrefFor({ offset })
      if (enabled) link.removeAttribute('aria-disabled')
      else link.setAttribute('aria-disabled', 'true')
    }
    for (const th of document.querySelectorAll('th[data-sort]')) {
      const key = th.dataset.sort
      const active = key === view.sort
      th.setAttribute('aria-sort', active ? (view.order === 'asc' ? 'ascending' : 'descending') : 'none')
      const order = active ? (view.order === 'asc' ? 'desc' : 'asc') : th.dataset.first || 'asc'
      th.querySelector('a').href = hrefFor({ sort: key, order, offset: 0 })
    }
    $('peer-state').value = view.state
  }

  const peersQuery = () => {
    const params = new URLSearchParams({ limit: PAGE_SIZE, offset: view.offset, sort: view.sort, order: view.order })
    if (view.state) params.set('state', view.state)
    return params.toString()
  }
  async function refreshPeers() {
    const asked = peersQuery()
    const page = await api('/v1/peers?' + asked)
    if (asked !== peersQuery()) return // the user moved on while this page was on its way
    total = page.total
    $('peer-rows').replaceChildren(...page.peers.map(peerRow))
    updateControls(page.peers.length)
  }

  const resultItem = (r) => el('li', { class: 'result', 'data-sha256': r.sha256 },
    el('h3', { text: r.name }),
    el('p', { class: 'row' },
      el('span', { text: bytes(r.size) }),
      el('span', { class: 'sources', text: sourcesText(r.sources.length) }),
      el('span', { class: 'muted holders', text: holdersText(r.sources) })),
    el('p', { class: 'row' },
      el('span', { class: 'muted', text: 'sha256' }),
      copyLine(r.sha256, 'Copy the full sha256 of ' + r.name, r.sha256.slice(0, 12))),
    el('p', { class: 'row' }, copyLine('peer get ' + r.sha256, 'Copy the peer get command for ' + r.name)))

  function showResults(q, results, live) {
    const out = $('results')
    const items = [...out.children]
    const same = items.length === results.length && items.every((li, i) => li.dataset.sha256 === results[i].sha256)
    if (same) {
      // A poll updates counts in place, so a focused Copy button keeps its focus.
      results.forEach((r, i) => {
        setText(items[i].querySelector('.sources'), sourcesText(r.sources.length))
        setText(items[i].querySelector('.holders'), holdersText(r.sources))
      })
    } else if (live && out.contains(document.activeElement)) {
      return
    } else {
      out.replaceChildren(...results.map(resultItem))
    }
    const n = results.length
    setText($('search-status'), (n === 0 ? 'No' : n) + ' result' + (n === 1 ? '' : 's') + ' with a live source for "' + q + '"')
  }

  async function search(live = false) {
    const q = $('search').value.trim()
    if (!live && q !== view.q) { view.q = q; remember() }
    if (!q) { $('results').replaceChildren(); $('search-status').textContent = ''; return }
    const { results } = await api('/v1/search?' + new URLSearchParams({ q, limit: 50 }))
    if (q === $('search').value.trim()) showResults(q, results, live)
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text)
      return true
    } catch {
      // Plain http on a LAN is not a secure context, so no clipboard API: copy from a selection instead.
      const area = el('textarea', { readonly: '', class: 'offscreen' })
      area.value = text
      document.body.append(area)
      area.select()
      const done = document.execCommand('copy')
      area.remove()
      return done
    }
  }

  let searchTimer
  $('search').addEventListener('input', () => {
    clearTimeout(searchTimer)
    searchTimer = setTimeout(() => search().catch(report), 250)
  })
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault()
    clearTimeout(searchTimer)
    search().catch(report)
  })
  $('peer-state').addEventListener('change', () => {
    view.state = $('peer-state').value
    view.offset = 0
    remember()
    refreshPeers().catch(report)
  })
  $('network').addEventListener('click', async (event) => {
    const link = event.target.closest('a[data-nav]')
    if (link) {
      event.preventDefault()
      if (link.getAttribute('aria-disabled') === 'true') return
      const next = fromQuery(new URL(link.href).search)
      Object.assign(view, { sort: next.sort, order: next.order, offset: next.offset, state: next.state })
      remember()
      refreshPeers().catch(report)
      return
    }
    const button = event.target.closest('button[data-copy]')
    if (button) {
      button.textContent = (await copy(button.dataset.copy)) ? 'Copied' : 'Copy failed'
      setTimeout(() => { button.textContent = 'Copy' }, 1500)
    }
  })
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault()
    $('login-error').textContent = ''
    // No url: a viewer session that may read but leaves the peer's address and lease as they are.
    const response = await fetch('/v1/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: $('login-user').value, password: $('login-password').value }),
    })
    const body = await response.json().catch(() => undefined)
    if (!response.ok) {
      $('login-error').textContent = body && body.error ? body.error.message : 'Login failed (HTTP ' + response.status + ').'
      return
    }
    sessionStorage.setItem(TOKEN_KEY, body.token)
    $('login-password').value = ''
    showLogin(false)
    tick()
  })

  let failing = false
  function report(err) {
    if (err instanceof LoginRequired) return
    failing = true
    $('live').textContent = 'Could not update (' + (err && err.message) + '); retrying.'
  }
  const recovered = () => {
    if (failing) { failing = false; $('live').textContent = LIVE_TEXT }
  }
  function tick() {
    // Members only: nothing to ask before the login, which would only answer 401.
    if (document.body.dataset.readsNeedLogin === 'true' && !sessionStorage.getItem(TOKEN_KEY)) return
    const work = [refreshStats()]
    if (!$('network').hidden) {
      work.push(refreshPeers())
      if ($('search').value.trim()) work.push(search(true))
    }
    Promise.all(work).then(recovered, report)
  }

  if (document.body.dataset.readsNeedLogin === 'true') showLogin(!sessionStorage.getItem(TOKEN_KEY))
  tick()
  setInterval(() => { if (!document.hidden) tick() }, POLL_MS)
  document.addEventListener('visibilitychange', () => { if (!document.hidden) tick() })
})()
`
