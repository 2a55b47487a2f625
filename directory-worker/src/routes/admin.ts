import { createRoute, z } from '@hono/zod-openapi'
import { Account, NewAccount, Username } from '../../../contract/schemas.ts'
import { hashPassword } from '../auth/passwords.ts'
import { ApiError } from '../errors.ts'
import { KiB, limitBody } from '../middleware/body-limit.ts'
import { requireAdminToken } from '../middleware/require-auth.ts'
import { bodyTooLarge, challenged, invalidInput, json, notJson, refusal, storageDown } from '../responses.ts'
import { createRouter } from '../router.ts'
import { addAccount, listAccounts, removeAccount, toAccount } from '../store/accounts.ts'
import { findPeer } from '../store/peers.ts'

// The operator's account calls, for where there is no shell next to the database (Workers). On Node
// `peerdir-directory users` does the same on the database file.
const admin = [{ adminToken: [] }]
const refusals = {
  401: challenged('The ADMIN_TOKEN secret is not sent as bearer (invalid_admin_token)'),
  403: refusal('Admin calls are off: no ADMIN_TOKEN secret is set (admin_disabled)'),
  503: storageDown,
}

const list = createRoute({
  method: 'get',
  path: '/admin/users',
  operationId: 'listUsers',
  tags: ['admin'],
  summary: 'The accounts, by name, a page at a time (ADMIN_TOKEN)',
  description: 'Every account with its peer state and when it was made; total counts them all.',
  security: admin,
  middleware: [requireAdminToken()] as const,
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(10_000).default(1000),
      offset: z.coerce.number().int().min(0).default(0),
    }),
  },
  responses: {
    200: json(z.object({ users: z.array(Account), total: z.number().int() }), 'One page of accounts'),
    400: invalidInput('limit is not 1-10000 or offset is negative'),
    ...refusals,
  },
})

const add = createRoute({
  method: 'post',
  path: '/admin/users',
  operationId: 'addUser',
  tags: ['admin'],
  summary: 'Make an account; its peer logs in with this name and password (ADMIN_TOKEN)',
  description:
    'The way to make accounts when REGISTRATION is closed and there is no shell next to the database.',
  security: admin,
  middleware: [limitBody(64 * KiB), requireAdminToken()] as const,
  request: { body: { content: { 'application/json': { schema: NewAccount } }, required: true } },
  responses: {
    201: json(z.object({ user: Account }), 'The account is made'),
    400: invalidInput('The body is not a valid NewAccount'),
    409: refusal('An account of that name exists already (account_exists)'),
    413: bodyTooLarge('64 KiB'),
    415: notJson,
    ...refusals,
  },
})

const remove = createRoute({
  method: 'delete',
  path: '/admin/users/{username}',
  operationId: 'removeUser',
  tags: ['admin'],
  description: 'Its tokens are refused from then on, by the directory and by peers that ask it.',
  summary: 'Remove an account: its sessions end at once and its index is dropped (ADMIN_TOKEN)',
  security: admin,
  middleware: [requireAdminToken()] as const,
  request: { params: z.object({ username: Username }) },
  responses: {
    200: json(z.object({ username: Username, removed: z.literal(true) }), 'The account is gone'),
    400: invalidInput('The username is not a valid name'),
    404: refusal('There is no account of that name (no_such_account)'),
    ...refusals,
  },
})

export const adminRoutes = createRouter()
  .openapi(list, async (c) => {
    const { limit, offset } = c.req.valid('query')
    const { db, now } = c.get('deps')
    return c.json(await listAccounts(db, { now: now(), limit, offset }), 200)
  })
  .openapi(add, async (c) => {
    const { username, password } = c.req.valid('json')
    const { db, now } = c.get('deps')
    if (!(await addAccount(db, { username, passwordHash: await hashPassword(password), now: now() }))) {
      throw new ApiError(409, 'account_exists', `An account ${username} exists already.`)
    }
    const made = await findPeer(db, username)
    if (!made) throw new Error('account vanished right after it was made')
    return c.json({ user: toAccount(made, now()) }, 201)
  })
  .openapi(remove, async (c) => {
    const { username } = c.req.valid('param')
    const peer = await findPeer(c.get('deps').db, username)
    if (!(await removeAccount(c.get('deps').db, username))) {
      throw new ApiError(404, 'no_such_account', `There is no account ${username}.`)
    }
    if (peer) await c.get('presence').removed(peer.id, username)
    return c.json({ username, removed: true as const }, 200)
  })
