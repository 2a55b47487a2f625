// Search as you type: results with their folder, size and live sources; Download, Play; a folder or a
// user opens Browse.
import { attempt, change, read } from './api.ts'
import { openBrowse } from './browse.ts'
import { $, button, el, formatBytes } from './dom.ts'
import { play } from './player.ts'

type Result = {
  name: string
  path: string
  size: number
  sha256: string
  sourceCount: number
  sources: string[]
}

const box = $<HTMLInputElement>('search')
const list = $('results')
const note = $('search-note')
const DELAY_MS = 250
let pending: ReturnType<typeof setTimeout> | undefined
let inFlight: AbortController | undefined

export const download = (sha256: string) => attempt(() => change('download', { sha256 }))

function row(r: Result): HTMLElement {
  const holder = r.sources[0]
  const where =
    holder && r.path
      ? [button(`${holder}/${r.path}`, () => openBrowse(holder, r.path), { class: 'link' })]
      : []
  const sources = r.sources.map((user) => button(user, () => openBrowse(user, ''), { class: 'link' }))
  return el(
    'li',
    {},
    el('span', { class: 'name', text: r.name }),
    ...where,
    el('span', { class: 'meta', text: `${formatBytes(r.size)} · ${r.sourceCount} live` }),
    ...sources,
    button('Download', download(r.sha256), { class: 'primary', 'aria-description': r.name }),
    button('Play', play(r.sha256, r.name), { 'aria-description': r.name }),
  )
}

async function search(query: string) {
  inFlight?.abort()
  const mine = new AbortController()
  inFlight = mine
  if (!query.trim()) {
    list.replaceChildren()
    note.textContent = ''
    return
  }
  const { results } = await read<{ results: Result[] }>('search', { q: query }, mine.signal)
  if (mine.signal.aborted) return
  note.textContent = results.length ? `${results.length} found` : 'Nothing found'
  list.replaceChildren(...results.map(row))
}

export function startSearch() {
  box.addEventListener('input', () => {
    clearTimeout(pending)
    pending = setTimeout(
      () =>
        void search(box.value).catch((err: unknown) => {
          if (!(err instanceof DOMException)) note.textContent = String((err as Error).message)
        }),
      DELAY_MS,
    )
  })
}
