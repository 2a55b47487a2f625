import { z } from '@hono/zod-openapi'
import type { FC } from 'hono/jsx'
import type { Peer, Result } from '../../../contract/schemas.ts'
import { variantCounts } from '../../../contract/variant.ts'
import { dashboardJs } from '../dashboard/script.gen.ts'
import { dashboardCss } from '../dashboard/styles.ts'
import { Pager, PeerRow, ResultItem, SortHeader, StatsList } from '../dashboard/view.tsx'
import { type DashboardView, PAGE_SIZE, resultsText } from '../dashboard/view-model.ts'
import { ORDERS, PEER_SORTS } from '../peer-order.ts'
import { open, storageDown } from '../responses.ts'
import { createRouter } from '../router.ts'
import { listPeers, type NetworkStats, toPeer } from '../store/peers.ts'

const viewFields = {
  q: z.string().trim().max(256),
  sort: z.enum(PEER_SORTS),
  order: z.enum(ORDERS),
  state: z.enum(['up', 'down']),
  offset: z.coerce.number().int().min(0).max(1_000_000_000),
}
/** The view's parameters as the OpenAPI document states them. */
const ViewParams = z.object(viewFields).partial()
/** The page never answers 400: a bad or stale link falls back to the default view. */
const ViewQuery = z.object({
  q: viewFields.q.catch('').default(''),
  sort: viewFields.sort.catch('username').default('username'),
  order: viewFields.order.catch('asc').default('asc'),
  state: viewFields.state.optional().catch(undefined),
  offset: viewFields.offset.catch(0).default(0),
})

type PageProps = {
  view: DashboardView
  now: number
  /** These three are undefined when reads need a token: the browser loads them after the user logs in. */
  stats: NetworkStats | undefined
  peers: { list: Peer[]; total: number } | undefined
  results: Result[] | undefined
}

const Page: FC<PageProps> = ({ view, now, stats, peers, results }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>peerdir network</title>
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href="/dashboard.css" />
    </head>
    <body data-reads-need-login={String(peers === undefined)}>
      <a class="skip" href="#search">
        Skip to search
      </a>
      <header>
        <h1>peerdir network</h1>
        <nav aria-label="Operator links">
          <a href="/docs">API docs</a> · <a href="/metrics">Metrics</a>
        </nav>
      </header>
      <main>
        <section aria-labelledby="glance">
          <h2 id="glance">At a glance</h2>
          <StatsList stats={stats} />
          <p id="live" class="muted" role="status">
            Live: updates every few seconds.
          </p>
        </section>

        <section id="login" aria-labelledby="login-title" hidden={peers !== undefined}>
          <h2 id="login-title">Log in to see the network</h2>
          <p>
            This directory shows searches and peers to members only. Log in with your peer's account: this
            opens a read-only session that leaves your peer as it is.
          </p>
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

        <div id="network" hidden={peers === undefined}>
          <section aria-labelledby="search-title">
            <h2 id="search-title">Search</h2>
            <search>
              <form method="get" action="/" id="search-form">
                <label for="search">Words in file or folder names</label>
                <div class="row">
                  <input id="search" name="q" type="search" autocomplete="off" value={view.q} />
                  <button type="submit">Search</button>
                </div>
              </form>
            </search>
            <p id="search-status" class="muted" role="status">
              {results && view.q ? resultsText(results.length, view.q) : ''}
            </p>
            <ul id="results" class="results">
              {(results ?? []).map((result, _, all) => (
                <ResultItem result={result} variants={variantCounts(all).get(result.sha256) ?? 1} />
              ))}
            </ul>
          </section>

          <section aria-labelledby="peers-title">
            <h2 id="peers-title">Peers</h2>
            <form method="get" action="/" class="row filter">
              <input type="hidden" name="q" value={view.q} />
              <label for="peer-state">Show</label>
              <select id="peer-state" name="state">
                <option value="" selected={!view.state}>
                  all peers
                </option>
                <option value="up" selected={view.state === 'up'}>
                  up only
                </option>
                <option value="down" selected={view.state === 'down'}>
                  down only
                </option>
              </select>
              <button type="submit" class="no-js">
                Show
              </button>
            </form>
            <div class="table-wrap">
              <table>
                <caption class="sr-only">Peers, {PAGE_SIZE} a page; column headers sort</caption>
                <thead>
                  <tr>
                    <SortHeader view={view} sort="username" label="Name" />
                    <SortHeader view={view} sort="lastSeen" label="State" first="desc" />
                    <th scope="col" class="hide-narrow">
                      URL
                    </th>
                    <SortHeader view={view} sort="files" label="Files" first="desc" numeric />
                    <th scope="col">
                      <span class="sr-only">Folders</span>
                    </th>
                  </tr>
                </thead>
                <tbody id="peer-rows">
                  {(peers?.list ?? []).map((peer) => (
                    <PeerRow peer={peer} now={now} />
                  ))}
                </tbody>
              </table>
            </div>
            <Pager view={view} shown={peers?.list.length ?? 0} total={peers?.total ?? 0} />
          </section>
          <section id="browse" aria-labelledby="browse-title" hidden>
            <h2 id="browse-title">Folders</h2>
            <p class="row">
              <button type="button" id="browse-up">
                Up
              </button>
              <button type="button" id="browse-close">
                Close
              </button>
            </p>
            <p class="row" id="browse-get" />
            <ul class="results" id="browse-folders" aria-label="Folders" />
            <ul class="results" id="browse-files" aria-label="Files" />
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
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
}

export const dashboard = createRouter()
dashboard.openAPIRegistry.registerPath({
  method: 'get',
  path: '/',
  operationId: 'dashboard',
  tags: ['dashboard'],
  summary: 'The dashboard: a web page of the network (peers, files, search); the view lives in the query',
  description:
    'Never answers 400: a bad or stale link falls back to the default view. On a members-only directory the page is served without the network’s data.',
  security: open,
  request: { query: ViewParams },
  responses: {
    200: { description: 'The page', content: { 'text/html': { schema: z.string() } } },
    503: storageDown,
  },
})
dashboard
  .get('/', async (c) => {
    const { db, now, settings } = c.get('deps')
    const query = ViewQuery.parse(c.req.query())
    const view: DashboardView = { ...query, state: query.state }
    const at = now()
    const open = !settings.readRequiresAuth
    const stats = open ? await c.get('stats').get(at) : undefined
    const page = open
      ? await listPeers(db, {
          state: view.state,
          sort: view.sort,
          order: view.order,
          offset: view.offset,
          now: at,
          limit: PAGE_SIZE,
        })
      : undefined
    // What GET /v1/search answers, for a page that works before (or without) its script.
    const results = open && view.q ? (await c.get('search').byName(view.q, at, 50)).results() : undefined
    for (const [name, value] of Object.entries(security)) c.header(name, value)
    return c.html(
      <Page
        view={view}
        now={at}
        stats={stats}
        peers={page && { list: page.peers.map((peer) => toPeer(peer, at)), total: page.total }}
        results={results}
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
