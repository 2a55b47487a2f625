// Status: the session up or down, the directory, the relay link, encryption, the version; Log in/out.
import { type AppEvent, attempt, change, read } from './api.ts'
import { $, el } from './dom.ts'

type Status = {
  username: string
  state: string
  lastError: string
  directory: string
  publicUrl: string
  relay?: { url: string; linked: boolean; error: string }
  encrypted: boolean
  version: string
  sharedDir: string
}

const line = $('status-line')
const facts = $('state')

export async function refreshStatus() {
  const s = await read<Status>('status')
  line.textContent = `${s.username} is ${s.state}${s.lastError ? ` (${s.lastError})` : ''}`
  const rows: [string, string][] = [
    ['Session', s.state],
    ['Directory', s.directory],
    ['Reached at', s.publicUrl],
    [
      'Relay',
      s.relay ? `${s.relay.url} · ${s.relay.linked ? 'linked' : `not linked ${s.relay.error}`}` : 'none',
    ],
    ['Encryption', s.encrypted ? 'TLS' : 'none'],
    ['Shared folder', s.sharedDir],
    ['Version', s.version],
  ]
  facts.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]))
}

export function startStatus() {
  $('login').addEventListener(
    'click',
    attempt(async () => change('login').finally(refreshStatus)),
  )
  $('logout').addEventListener(
    'click',
    attempt(async () => change('logout').finally(refreshStatus)),
  )
}

export function statusEvent(event: AppEvent) {
  if (event.type === 'session') void refreshStatus()
}
