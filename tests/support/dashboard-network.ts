import type { Page } from 'playwright-core'
import type { fileEntry } from './directory-app.ts'

/** Brings a peer up through the real REST API, as a daemon would; the password is the same for all. */
export async function apiLogin(directoryUrl: string, username: string, port: number): Promise<string> {
  const response = await fetch(`${directoryUrl}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'browser password', url: `http://127.0.0.1:${port}` }),
  })
  if (response.status !== 200)
    throw new Error(`login ${username}: ${response.status} ${await response.text()}`)
  return ((await response.json()) as { token: string }).token
}

export async function apiPublish(
  directoryUrl: string,
  token: string,
  files: (ReturnType<typeof fileEntry> & { path?: string })[],
) {
  const response = await fetch(`${directoryUrl}/v1/index`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ files }),
  })
  if (response.status !== 200) throw new Error(`publish: ${response.status} ${await response.text()}`)
}

export async function apiLogout(directoryUrl: string, token: string) {
  const response = await fetch(`${directoryUrl}/v1/logout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  })
  if (response.status !== 200) throw new Error(`logout: ${response.status} ${await response.text()}`)
}

export type PageProblems = { consoleErrors: string[]; dialogs: string[]; failedResponses: string[] }

/**
 * Collects what must never happen on the page unless a test expects it: console errors, uncaught
 * exceptions, dialogs (alert), and answers of 400 or more (as `<status> <path>`).
 */
export function watchPage(page: Page): PageProblems {
  const seen: PageProblems = { consoleErrors: [], dialogs: [], failedResponses: [] }
  page.on('response', (response) => {
    if (response.status() >= 400)
      seen.failedResponses.push(`${response.status()} ${new URL(response.url()).pathname}`)
  })
  page.on('console', (message) => {
    if (message.type() === 'error') seen.consoleErrors.push(message.text())
  })
  page.on('pageerror', (err) => seen.consoleErrors.push(err.message))
  page.on('dialog', async (dialog) => {
    seen.dialogs.push(dialog.message())
    await dialog.dismiss()
  })
  return seen
}
