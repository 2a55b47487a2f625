// Shared: what this peer shares, by folder, and how many times each was served since the daemon started.
import { type AppEvent, read } from './api.ts'
import { $, el, formatBytes } from './dom.ts'

type SharedFile = { name: string; folder: string; size: number; served: number }

const list = $('shared')

export async function refreshShared() {
  const { files } = await read<{ files: SharedFile[] }>('shared')
  list.replaceChildren(
    ...files.map((f) =>
      el(
        'li',
        {},
        el('span', { class: 'name', text: f.folder ? `${f.folder}/${f.name}` : f.name }),
        el('span', { class: 'meta', text: `${formatBytes(f.size)} · served ${f.served}×` }),
      ),
    ),
  )
}

export function sharedEvent(event: AppEvent) {
  if (event.type === 'download-completed' || event.type === 'upload-served') void refreshShared()
}
