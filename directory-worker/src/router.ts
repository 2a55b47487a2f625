import type { Hook } from '@hono/zod-openapi'
import { OpenAPIHono } from '@hono/zod-openapi'
import type { AppEnv } from './deps.ts'
import { errorBody } from './errors.ts'

/** Turns the first zod issue into the contract's error body (400): where the input is wrong and what it must be. */
export const validationError: Hook<unknown, AppEnv, string, unknown> = (result, c) => {
  if (result.success) return
  const issue = result.error.issues[0]
  const where = issue?.path.length ? issue.path.join('.') : result.target
  const message = issue ? `${where}: ${issue.message.replace(/\.$/, '')}.` : 'The request is invalid.'
  return c.json(errorBody('invalid_request', message), 400)
}

/** Every feature router validates the same way. */
export const createRouter = () => new OpenAPIHono<AppEnv>({ defaultHook: validationError })
