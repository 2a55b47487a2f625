import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { CallTokens } from '../../peer/src/daemon/call-tokens.ts'
import { DirectoryClient } from '../../peer/src/wire/directory-client.ts'
import { type DirectoryProcess, startDirectoryProcess } from '../support/directory-process.ts'
import { sleepUntil } from '../support/peer-process.ts'

/** Call tokens live 3 s here: renewed 2 s after they were asked for. */
const TTL_SECONDS = 3

let directory: DirectoryProcess
beforeAll(async () => {
  directory = await startDirectoryProcess({ env: { TOKEN_TTL_SECONDS: String(TTL_SECONDS) } })
})
afterAll(() => directory?.stop())

it('asks for a call token once the daemon has a session, even after asking without one', async () => {
  const client = new DirectoryClient(directory.url)
  const callee = await client.login({
    username: 'callee',
    password: 'secret-password',
    url: 'http://127.0.0.1:1',
  })
  expect(callee.token).toBeTruthy()
  let session: string | undefined
  const tokens = new CallTokens(client, () => session)
  // Counts the requests to the directory (each still made): tokens minted in one second are equal, so
  // only the count tells a kept token from a new one.
  const mints = vi.spyOn(client, 'callToken')
  // Not logged in yet: nothing to ask with, so no token, and nothing remembered from that.
  expect(await tokens.token('callee')).toBeUndefined()
  expect(mints).not.toHaveBeenCalled()
  session = (
    await client.login({ username: 'caller', password: 'secret-password', url: 'http://127.0.0.1:2' })
  ).token
  const token = await tokens.token('callee')
  expect(token).toBeTruthy()
  expect(mints).toHaveBeenCalledTimes(1)
  // Kept: a second ask answers the same token without a new request.
  expect(await tokens.token('CALLEE')).toBe(token)
  expect(mints).toHaveBeenCalledTimes(1)
})

/** The real directory client, counting the call tokens it asks for. */
class CountingClient extends DirectoryClient {
  minted = 0
  override callToken(token: string, audience: string) {
    this.minted++
    return super.callToken(token, audience)
  }
}

it('keeps a call token for two thirds of its life, then asks for a new one; and at once after a refusal', async () => {
  const client = new CountingClient(directory.url)
  await client.login({ username: 'renewed', password: 'secret-password', url: 'http://127.0.0.1:3' })
  // Sessions live 3 s too: each ask after a wait is made with a fresh one (as the daemon's session
  // loop keeps one), so a loaded machine's slowness never shows up as an expired session.
  const renewerSession = async () =>
    (await client.login({ username: 'renewer', password: 'secret-password', url: 'http://127.0.0.1:4' }))
      .token
  let session = await renewerSession()
  const tokens = new CallTokens(client, () => session)
  const asked = Date.now()
  const first = await tokens.token('renewed')
  expect(first).toBeTruthy()
  expect(await tokens.token('renewed')).toBe(first)
  expect(client.minted).toBe(1)
  // Past two thirds of its life (counted from when it was asked): a new one, before the old expires.
  await sleepUntil(asked + (TTL_SECONDS * 1000 * 2) / 3 + 50)
  session = await renewerSession()
  const second = await tokens.token('renewed')
  expect(client.minted).toBe(2)
  expect(second).not.toBe(first)
  expect(await tokens.token('renewed')).toBe(second)
  expect(client.minted).toBe(2)
  // The callee refused it (its session was renewed, or its clock runs ahead): the next is fresh.
  tokens.refused('RENEWED')
  session = await renewerSession()
  await tokens.token('renewed')
  expect(client.minted).toBe(3)
})
