import { createMiddleware } from 'hono/factory'
import type { AppEnv, Deps } from '../deps.ts'

/** Puts the deps and a request id on c.var, and logs one line per request. */
export const withDeps = (deps: Deps) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const requestId =
      c.req
        .header('x-request-id')
        ?.slice(0, 64)
        .replace(/[^\w.-]/g, '') || crypto.randomUUID()
    c.set('deps', deps)
    c.set('requestId', requestId)
    const started = performance.now()
    await next()
    c.header('x-request-id', requestId)
    const ms = (performance.now() - started).toFixed(1)
    deps.log(`${c.req.method} ${new URL(c.req.url).pathname} ${c.res.status} ${ms}ms id=${requestId}`)
  })
