import type { FC } from 'hono/jsx'
import { dashboardJs } from '../dashboard/client.ts'
import { dashboardCss } from '../dashboard/styles.ts'
import { createRouter } from '../router.ts'
import type { Peer } from '../schemas.ts'
import { listPeers, type NetworkStats, toPeer } from '../store/peers.ts'

const formatBytes = (n: number) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`
}

const Stat: FC<{ id: string; label: string; value: string }> = ({ id, label, value }) => (
  <li>
    <span class="value" id={id}>
      {value}
    </span>
    <span class="label">{label}</span>
  </li>
)

const PeerRow: FC<{ peer: Peer }> = ({ peer }) => (
  <tr data-peer={peer.username}>
    <td>{peer.username}</td>
    <td>
      <span class={peer.state}>{peer.state}</span>{' '}
      <span class="muted">
        last seen {new Date(peer.lastSeen).toISOString().replace('T', ' ').slice(0, 19)} UTC
      </span>
    </td>
    <td class="hide-narrow">
      <code>{peer.url}</code>
    </td>
    <td>{peer.files}</td>
  </tr>
)

const SortHeader: FC<{ sort: string; label: string; className?: string }> = ({ sort, label, className }) => (
  <th scope="col" data-sort={sort} aria-sort={sort === 'username' ? 'ascending' : 'none'} class={className}>
    <button type="button">{label}</button>
  </th>
)

const Page: FC<{
  stats: NetworkStats
  peers: Peer[] | undefined
  total: number
  readsNeedLogin: boolean
}> = ({ stats, peers, total, readsNeedLogin }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>peerdir network</title>
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href="/dashboard.css" />
    </head>
    <body data-reads-need-login={String(readsNeedLogin)}>
      <header>
        <h1>peerdir network</h1>
        <nav aria-label="Operator links">
          <a href="/docs">API docs</a> · <a href="/metrics">Metrics</a>
        </nav>
      </header>
      <main>
        <section aria-labelledby="glance">
          <h2 id="glance">At a glance</h2>
          <ul class="stats">
            <Stat id="stat-peers" label="peers up / total" value={`${stats.peersUp} / ${stats.peersTotal}`} />
            <Stat id="stat-files" label="files shared" value={String(stats.files)} />
            <Stat id="stat-unique" label="distinct contents" value={String(stats.uniqueFiles)} />
            <Stat id="stat-bytes" label="total size" value={formatBytes(stats.bytes)} />
          </ul>
          <p id="live" class="muted" aria-live="polite">
            Updates every 2 seconds.
          </p>
        </section>

        <section id="login" aria-labelledby="login-title" hidden={!readsNeedLogin}>
          <h2 id="login-title">Log in to see the network</h2>
          <p>This directory shows searches and peers to members only. Use your peer account.</p>
          <form id="login-form">
            <label for="login-user">Username</label>
            <input id="login-user" name="username" autocomplete="username" required />
            <label for="login-password">Password</label>
            <input
              id="login-password"
              name="password"
              type="password"
              autocomplete="current-password"
              required
            />
            <p>
              <button type="submit">Log in</button> <span id="login-error" role="alert" />
            </p>
          </form>
        </section>

        <div id="network" hidden={readsNeedLogin}>
          <section aria-labelledby="search-title">
            <h2 id="search-title">Search</h2>
            <label for="search">File name contains</label>
            <input id="search" type="search" autocomplete="off" placeholder="e.g. concert" />
            <p id="search-status" class="muted" aria-live="polite" />
            <ul id="results" style="list-style:none;padding:0" />
          </section>

          <section aria-labelledby="peers-title">
            <h2 id="peers-title">Peers</h2>
            <table>
              <thead>
                <tr>
                  <SortHeader sort="username" label="Name" />
                  <SortHeader sort="state" label="State" />
                  <th scope="col" class="hide-narrow">
                    URL
                  </th>
                  <SortHeader sort="files" label="Files" />
                </tr>
              </thead>
              <tbody id="peer-rows">
                {(peers ?? []).map((peer) => (
                  <PeerRow peer={peer} />
                ))}
              </tbody>
            </table>
            <div class="pager">
              <button type="button" id="peer-prev" disabled>
                Previous
              </button>
              <span id="peer-page">{total === 0 ? 'no peers' : `1-${Math.min(50, total)} of ${total}`}</span>
              <button type="button" id="peer-next" disabled={total <= 50}>
                Next
              </button>
            </div>
          </section>
        </div>
      </main>
      <script src="/dashboard.js" defer />
    </body>
  </html>
)

const security = {
  // Only this origin's own script and style: a name that smuggles markup could not run anything anyway.
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
}

export const dashboard = createRouter()
  .get('/', async (c) => {
    const { db, now, settings } = c.var.deps
    const at = now()
    const stats = await c.var.stats.get(db, at)
    const page = settings.readRequiresAuth
      ? undefined
      : await listPeers(db, { now: at, limit: 50, offset: 0 })
    for (const [name, value] of Object.entries(security)) c.header(name, value)
    return c.html(
      <Page
        stats={stats}
        peers={page?.peers.map((peer) => toPeer(peer, at))}
        total={page?.total ?? 0}
        readsNeedLogin={settings.readRequiresAuth}
      />,
    )
  })
  .get('/dashboard.js', (c) => {
    c.header('Cache-Control', 'no-cache')
    return c.body(dashboardJs, 200, { 'Content-Type': 'text/javascript; charset=utf-8' })
  })
  .get('/dashboard.css', (c) => {
    c.header('Cache-Control', 'no-cache')
    return c.body(dashboardCss, 200, { 'Content-Type': 'text/css; charset=utf-8' })
  })
