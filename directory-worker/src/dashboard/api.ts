// The dashboard script's reads of the directory's API, with the viewer's session token when it has one.
import { $ } from './dom.ts'

export const TOKEN_KEY = 'peerdir-token'
/** A members-only directory: reads need a session, and the page asks for a login first. */
export const readsNeedLogin = document.body.dataset.readsNeedLogin === 'true'

/** A read answered 401 on a members-only directory: the login form is shown, nothing else to report. */
export class LoginRequired extends Error {}

export async function api<T>(path: string): Promise<T> {
  const headers = new Headers()
  const token = sessionStorage.getItem(TOKEN_KEY)
  if (token) headers.set('authorization', `Bearer ${token}`)
  const response = await fetch(path, { headers })
  if (response.status === 401 && readsNeedLogin) {
    sessionStorage.removeItem(TOKEN_KEY)
    showLogin(true)
    throw new LoginRequired()
  }
  const body = (await response.json().catch(() => undefined)) as
    | (T & { error?: { message?: string } })
    | undefined
  if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`)
  return body as T
}

export function showLogin(show: boolean) {
  $('login').hidden = !show
  $('network').hidden = show
  if (show) $('login-user').focus()
}
