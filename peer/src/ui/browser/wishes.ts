// Wishes: saved searches the daemon runs again by itself; add (fetching matches, or not), remove, and
// each one's matches.
import { type AppEvent, attempt, change, read } from './api.ts'
import { $, button, el, formatBytes } from './dom.ts'

type Wish = {
  id: string
  query: string
  get: boolean
  lastError?: string
  matches: { name: string; size: number; fetch?: string }[]
}

const list = $('wishes')
const form = $<HTMLFormElement>('wish-form')
const query = $<HTMLInputElement>('wish-query')
const fetchMatches = $<HTMLInputElement>('wish-get')

function row(wish: Wish): HTMLElement {
  const matches = wish.matches.map((m) =>
    el('li', { class: 'meta', text: `${m.name} · ${formatBytes(m.size)}${m.fetch ? ` · ${m.fetch}` : ''}` }),
  )
  return el(
    'li',
    {},
    el('span', { class: 'name', text: wish.query }),
    el('span', {
      class: 'meta',
      text: `${wish.get ? 'fetches matches' : 'lists matches'}${wish.lastError ? ` · ${wish.lastError}` : ''}`,
    }),
    button(
      'Remove',
      attempt(async () => {
        await change('wish-remove', { id: wish.id })
        await refreshWishes()
      }),
      { 'aria-description': wish.query },
    ),
    el('ul', { class: 'rows', 'aria-label': `Matches of ${wish.query}` }, ...matches),
  )
}

export async function refreshWishes() {
  const { wishes } = await read<{ wishes: Wish[] }>('wishes')
  list.replaceChildren(...wishes.map(row))
}

export function startWishes() {
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    attempt(async () => {
      await change('wish-add', { query: query.value, get: fetchMatches.checked })
      query.value = ''
      await refreshWishes()
    })()
  })
}

export function wishEvent(event: AppEvent) {
  // A match's fetch state changes as its download ends.
  if (['wish-matched', 'download-completed', 'download-failed'].includes(event.type)) void refreshWishes()
}
