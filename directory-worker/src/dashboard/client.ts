// The dashboard's browser script, served as /dashboard.js. Plain JS (no build step); everything that
// comes from the network reaches the page through textContent, never as HTML.
export const dashboardJs = `(() => {
  'use strict'
  const $ = (id) => document.getElementById(id)
  const TOKEN_KEY = 'peerdir-token'
  const state = { sort: 'username', order: 'asc', offset: 0, limit: 50, total: 0, query: '' }

  const api = async (path, init = {}) => {
    const headers = new Headers(init.headers)
    const token = sessionStorage.getItem(TOKEN_KEY)
    if (token) headers.set('authorization', 'Bearer ' + token)
    const response = await fetch(path, { ...init, headers })
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY)
      showLogin(true)
      throw new Error('login required')
    }
    if (!response.ok) throw new Error((await response.json()).error.message)
    return response.json()
  }

  const bytes = (n) => {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
    let i = 0
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
    return i === 0 ? n + ' B' : n.toFixed(n < 10 ? 2 : 1) + ' ' + units[i]
  }
  const ago = (iso) => {
    const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000))
    if (s < 60) return s + ' s ago'
    if (s < 3600) return Math.round(s / 60) + ' min ago'
    if (s < 86400) return Math.round(s / 3600) + ' h ago'
    return Math.round(s / 86400) + ' d ago'
  }
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'text') node.textContent = v
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v)
      else node.setAttribute(k, v)
    }
    for (const child of children) node.append(child)
    return node
  }
  const copyButton = (label, value) =>
    el('button', { type: 'button', 'aria-label': label, text: 'Copy', onclick: async (event) => {
      try { await navigator.clipboard.writeText(value); event.target.textContent = 'Copied' }
      catch { event.target.textContent = 'Select and copy' }
      setTimeout(() => { event.target.textContent = 'Copy' }, 1500)
    } })

  const showLogin = (show) => {
    $('login').hidden = !show
    $('network').hidden = show
  }

  async function refreshStats() {
    const s = await fetch('/v1/stats').then((r) => r.json())
    $('stat-peers').textContent = s.peersUp + ' / ' + s.peersTotal
    $('stat-files').textContent = String(s.files)
    $('stat-unique').textContent = String(s.uniqueFiles)
    $('stat-bytes').textContent = bytes(s.bytes)
  }

  async function refreshPeers() {
    const params = new URLSearchParams({ limit: state.limit, offset: state.offset, sort: state.sort, order: state.order })
    const page = await api('/v1/peers?' + params)
    state.total = page.total
    const body = $('peer-rows')
    body.replaceChildren(...page.peers.map((p) => el('tr', { 'data-peer': p.username },
      el('td', { text: p.username }),
      el('td', {}, el('span', { class: p.state, text: p.state }), ' ', el('span', { class: 'muted', text: 'seen ' + ago(p.lastSeen) })),
      el('td', { class: 'hide-narrow' }, el('code', { text: p.url })),
      el('td', { text: String(p.files) }))))
    const last = Math.min(state.offset + state.limit, state.total)
    $('peer-page').textContent = state.total === 0 ? 'no peers' : (state.offset + 1) + '-' + last + ' of ' + state.total
    $('peer-prev').disabled = state.offset === 0
    $('peer-next').disabled = last >= state.total
    for (const th of document.querySelectorAll('th[data-sort]')) {
      th.setAttribute('aria-sort', th.dataset.sort === state.sort ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none')
    }
  }

  async function search() {
    const q = $('search').value.trim()
    state.query = q
    const out = $('results')
    if (!q) { out.replaceChildren(); $('search-status').textContent = ''; return }
    const { results } = await api('/v1/search?' + new URLSearchParams({ q, limit: 50 }))
    if (q !== state.query) return
    $('search-status').textContent = results.length + ' result' + (results.length === 1 ? '' : 's') + ' for "' + q + '"'
    out.replaceChildren(...results.map((r) => {
      const command = 'peer get ' + r.sha256
      return el('li', { class: 'result' },
        el('h3', { text: r.name }),
        el('div', { class: 'row' },
          el('span', { text: bytes(r.size) }),
          el('span', { class: 'muted', text: '·' }),
          el('span', { text: r.sources.length + ' live source' + (r.sources.length === 1 ? '' : 's') }),
          el('span', { class: 'muted', text: '·' }),
          el('code', { title: r.sha256, text: r.sha256.slice(0, 12) }),
          copyButton('Copy the full sha256 of ' + r.name, r.sha256)),
        el('div', { class: 'row' }, el('code', { text: command }), copyButton('Copy the peer get command for ' + r.name, command)))
    }))
  }

  let timer
  $('search').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => search().catch(report), 250) })
  $('peer-prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - state.limit); refreshPeers().catch(report) })
  $('peer-next').addEventListener('click', () => { state.offset += state.limit; refreshPeers().catch(report) })
  for (const button of document.querySelectorAll('th[data-sort] button')) {
    button.addEventListener('click', () => {
      const key = button.parentElement.dataset.sort
      state.order = state.sort === key && state.order === 'asc' ? 'desc' : 'asc'
      state.sort = key
      state.offset = 0
      refreshPeers().catch(report)
    })
  }
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault()
    $('login-error').textContent = ''
    const response = await fetch('/v1/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: $('login-user').value, password: $('login-password').value }),
    })
    const body = await response.json()
    if (!response.ok) { $('login-error').textContent = body.error.message; return }
    sessionStorage.setItem(TOKEN_KEY, body.token)
    showLogin(false)
    tick()
  })

  function report(err) {
    if (err && err.message !== 'login required') $('live').textContent = 'Update failed: ' + err.message
  }
  function tick() {
    refreshStats().catch(report)
    if (!$('network').hidden) refreshPeers().catch(report)
  }
  if (document.body.dataset.readsNeedLogin === 'true' && !sessionStorage.getItem(TOKEN_KEY)) showLogin(true)
  tick()
  setInterval(tick, 2000)
})()
`
