// Downloads: a progressbar per running download named by its file, its speed, sources and the queues
// that keep it waiting; Cancel (keeps the .part), Retry for a failed one, Open and Play for a finished one. Kept live by the events.
import { type BoardEntry, queuedAt } from '../download-board.ts'
import { type AppEvent, attempt, change, read } from './api.ts'
import { $, button, el, formatBytes } from './dom.ts'
import { play, stopPlaying } from './player.ts'

/** A download as the daemon's board lists it (the page needs no more than who sent the bytes). */
type Entry = Omit<BoardEntry, 'sources'>

/** ` · queued at alice: place 3, bob: place 1`, or nothing when no source keeps it waiting. */
const queueNote = (queued: Record<string, number>) => {
  const places = Object.entries(queued).map(([source, place]) => `${source}: place ${place}`)
  return places.length > 0 ? ` · queued at ${places.join(', ')}` : ''
}

const list = $('downloads')
const entries = new Map<string, Entry>()
/** The last progress seen of each, for its speed. */
const last = new Map<string, { at: number; bytes: number; speed: number }>()

const open = (sha256: string, name: string) =>
  attempt(async () => {
    const { url } = await change<{ url: string }>('play', { sha256, name })
    window.open(url, '_blank', 'noopener')
  })

function row(e: Entry): HTMLElement {
  const item = el('li', { 'data-sha256': e.sha256 }, el('span', { class: 'name', text: e.name }))
  if (e.state === 'running') {
    const bar = el('progress', { max: String(e.size || 1), value: String(e.doneBytes), 'aria-label': e.name })
    item.append(bar, el('span', { class: 'meta', text: runningFacts(e) }))
    // The player's next read of a cancelled content would start its download again.
    const cancel = attempt(async () => {
      stopPlaying(e.sha256)
      await change('cancel', { sha256: e.sha256 })
    })
    item.append(button('Cancel', cancel, { 'aria-description': e.name }))
  } else if (e.state === 'failed') {
    item.append(el('span', { class: 'meta failed', text: e.reason }))
    item.append(
      button(
        'Retry',
        attempt(() => change('download', { sha256: e.sha256 })),
        { 'aria-description': e.name },
      ),
    )
  } else {
    item.append(el('span', { class: 'meta', text: `${formatBytes(e.size)} · saved to ${e.path}` }))
    item.append(button('Open', open(e.sha256, e.name), { 'aria-description': e.name }))
    item.append(button('Play', play(e.sha256, e.name), { 'aria-description': e.name }))
  }
  return item
}

const runningFacts = (e: Entry) =>
  `${formatBytes(e.doneBytes)} of ${formatBytes(e.size)} · ${formatBytes(last.get(e.sha256)?.speed ?? 0)}/s · ${e.activeSources} ${e.activeSources === 1 ? 'source' : 'sources'}${queueNote(e.queued ?? {})}`

function show(e: Entry) {
  const before = entries.get(e.sha256)
  entries.set(e.sha256, e)
  const old = list.querySelector<HTMLElement>(`li[data-sha256="${e.sha256}"]`)
  const bar = old?.querySelector('progress')
  const facts = old?.querySelector('.meta')
  // A running row keeps its nodes as it moves on: made anew at every event, a Cancel pressed just as
  // one came was lost (the button under the pointer at the press was gone at the release).
  if (bar && facts && before?.state === 'running' && e.state === 'running') {
    bar.max = e.size || 1
    bar.value = e.doneBytes
    facts.textContent = runningFacts(e)
    return
  }
  const item = row(e)
  if (old) old.replaceWith(item)
  else list.prepend(item)
}

export async function refreshDownloads() {
  const { downloads } = await read<{ downloads: Entry[] }>('downloads')
  entries.clear()
  list.replaceChildren(...downloads.map(row))
  for (const e of downloads) entries.set(e.sha256, e)
}

export function downloadEvent(event: AppEvent) {
  if (!event.type.startsWith('download-')) return
  const sha256 = event.sha256 as string
  const known = entries.get(sha256)
  const base: Entry = known ?? {
    sha256,
    name: event.name as string,
    size: event.size as number,
    state: 'running',
    doneBytes: 0,
    activeSources: 0,
    path: '',
    reason: '',
    queued: {},
  }
  if (event.type === 'download-started')
    show({ ...base, state: 'running', doneBytes: 0, reason: '', queued: {} })
  if (event.type === 'download-queued')
    show({ ...base, queued: queuedAt(base.queued, event.queuedAt as string, event.queuePosition as number) })
  if (event.type === 'download-progress') {
    const now = performance.now()
    const bytes = event.doneBytes as number
    const before = last.get(sha256)
    const speed = before && now > before.at ? ((bytes - before.bytes) * 1000) / (now - before.at) : 0
    last.set(sha256, { at: now, bytes, speed: Math.max(0, speed) })
    show({ ...base, state: 'running', doneBytes: bytes, activeSources: event.activeSources as number })
  }
  if (event.type === 'download-completed')
    show({ ...base, state: 'done', doneBytes: base.size, path: event.path as string, queued: {} })
  if (event.type === 'download-failed')
    show({ ...base, state: 'failed', reason: event.reason as string, queued: {} })
}
