import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { CallTokens } from '../../peer/src/daemon/call-tokens.ts'
import { DirectoryClient } from '../../peer/src/wire/directory-client.ts'
import { type DirectoryProcess, startDirectoryProcess } from '../support/directory-process.ts'

let directory: DirectoryProcess
beforeAll(async () => {
  directory = await startDirectoryProcess()
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
