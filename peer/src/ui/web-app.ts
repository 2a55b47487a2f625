import type { AppSessions } from '../daemon/app-sessions.ts'
import { type GatewayRequest, type GatewayResponse, refusedCaller } from '../daemon/content-gateway.ts'
import type { ControlledDaemon } from '../daemon/control-service.ts'
import type { PlainHttp } from '../wire/transport.ts'
import { appActions } from './app-api.ts'
import { type AppResponse, cookie, header, readJson, send, sendError, sendJson } from './app-http.ts'
import { DownloadBoard } from './download-board.ts'
import { streamEvents } from './event-stream.ts'
import { webAppJs } from './script.gen.ts'
import { shellPage } from './shell.tsx'
import { APP_CSS } from './styles.ts'

const RUN_PEER_UI = 'Run `peer ui` in a terminal on this machine to open the app.'

/**
 * The daemon's web app (`peer ui`) under `/app/`, on the daemon's port beside the gateway and to the same
 * callers: this machine, named by a loopback host, no other site's page (content-gateway.ts). A one-time
 * URL (`/app/open?ticket=`) sets the session cookie; everything else needs it, and every change (a POST)
 * also a same-origin `Origin` and a JSON body, which no form of another page can send.
 */
export function webApp(daemon: ControlledDaemon, app: { sessions: AppSessions; port: number }): PlainHttp {
  const board = new DownloadBoard(daemon.events)
  const { reads, changes } = appActions(daemon, board)
  const cookieName = `peerdir-app-${app.port}`

  async function handle(req: GatewayRequest, res: AppResponse) {
    const why = refusedCaller(req, app.port)
    if (why) return send(res, 403, 'text/plain; charset=utf-8', `${why}\n`)
    const url = new URL(req.url ?? '/', 'http://app')
    const path = url.pathname
    if (path === '/app/open' && req.method === 'GET') {
      const session = app.sessions.spend(url.searchParams.get('ticket'))
      if (!session) {
        return send(
          res,
          403,
          'text/plain; charset=utf-8',
          `This link was used already or is too old. ${RUN_PEER_UI}\n`,
        )
      }
      return send(res, 303, 'text/plain; charset=utf-8', 'opening the app\n', {
        location: '/app/',
        'set-cookie': `${cookieName}=${session}; HttpOnly; SameSite=Strict; Path=/`,
      })
    }
    if (!app.sessions.holds(cookie(req, cookieName))) {
      if (path.startsWith('/app/api/')) return sendJson(res, 401, { error: RUN_PEER_UI })
      return send(
        res,
        401,
        'text/html; charset=utf-8',
        `<!doctype html><title>peerdir</title><p>${RUN_PEER_UI}</p>\n`,
      )
    }
    if (req.method === 'GET') {
      if (path === '/app/' || path === '/app') return send(res, 200, 'text/html; charset=utf-8', shellPage())
      if (path === '/app/app.js') return send(res, 200, 'text/javascript; charset=utf-8', webAppJs)
      if (path === '/app/app.css') return send(res, 200, 'text/css; charset=utf-8', APP_CSS)
      if (path === '/app/api/events') return streamEvents(daemon.events, res)
      const read = reads[path.slice('/app/api/'.length)]
      if (path.startsWith('/app/api/') && read) {
        return sendJson(res, 200, await read(Object.fromEntries(url.searchParams)))
      }
      return send(res, 404, 'text/plain; charset=utf-8', 'not found\n')
    }
    const change = changes[path.slice('/app/api/'.length)]
    if (req.method !== 'POST' || !path.startsWith('/app/api/') || !change) {
      return send(res, 405, 'text/plain; charset=utf-8', 'not here\n')
    }
    const host = header(req, ':authority') ?? header(req, 'host')
    const origin = header(req, 'origin')
    if (!origin || (origin !== `http://${host}` && origin !== `https://${host}`)) {
      return sendJson(res, 403, { error: 'changes come from the app’s own page only' })
    }
    if (!(header(req, 'content-type') ?? '').startsWith('application/json')) {
      return sendJson(res, 415, { error: 'changes are JSON' })
    }
    return sendJson(res, 200, await change(await readJson(req)))
  }

  return (req: GatewayRequest, res: GatewayResponse) => {
    const path = req.url ?? ''
    if (path !== '/app' && !path.startsWith('/app/') && !path.startsWith('/app?')) return false
    const response = res as AppResponse
    void handle(req, response).catch((err: unknown) => sendError(response, err))
    return true
  }
}
