import { createMiddleware } from 'hono/factory'
import type { AppEnv, Deps } from '../deps.ts'
import { toErrorResponse } from '../errors.ts'

/** The app's services, built once per app and put on every request's context. */
export type Services = Pick<
  AppEnv['Variables'],
  'tokens' | 'metrics' | 'stats' | 'search' | 'presence' | 'indexWrites'
>

/**
 * Everything a request's context needs, in one middleware (each layer costs a heartbeat a promise):
 * the deps, the services and a request id; it waits for storage to be ready, then logs one line per
 * request and counts it in the metrics. Handlers read context values with c.get(): Hono's c.var
 * copies every value into a new object on each access (6% of a heartbeat's time).
 */
export const withDeps = (deps: Deps, services: Services, ready: () => Promise<void> | undefined) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const requestId =
      c.req
        .header('x-request-id')
        ?.slice(0, 64)
        .replace(/[^\w.-]/g, '') || crypto.randomUUID()
    c.set('deps', deps)
    c.set('requestId', requestId)
    c.set('tokens', services.tokens)
    c.set('metrics', services.metrics)
    c.set('stats', services.stats)
    c.set('search', services.search)
    c.set('presence', services.presence)
    c.set('indexWrites', services.indexWrites)
    // Set before the response exists, so it is built with it: setting a header on a finished
    // response makes Hono build that response again (6% of a heartbeat).
    c.header('x-request-id', requestId)
    const started = performance.now()
    const starting = ready()
    // Not ready yet (the first requests, or storage down at boot): a failure is answered and logged
    // like any other error.
    const failed =
      starting &&
      (await starting.then(
        () => undefined,
        (err: Error) => err,
      ))
    if (failed) c.res = toErrorResponse(failed, c)
    else await next()
    const seconds = (performance.now() - started) / 1000
    // routePath is the matched pattern (/v1/files/:sha256), so labels stay few whatever the URLs are.
    const route = c.req.routePath && c.req.routePath !== '/*' ? c.req.routePath : 'unmatched'
    services.metrics.observe(route, c.req.method, c.res.status, seconds)
    // Percent-encoded again where it decoded to a control character: a path cannot forge a log line.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    const path = c.req.path.replace(/[\u0000-\u001f\u007f-\u009f]/g, encodeURIComponent)
    deps.log(`${c.req.method} ${path} ${c.res.status} ${(seconds * 1000).toFixed(1)}ms id=${requestId}`)
  })
