// Browse: one level of a user's share; folders open, files download or play, a whole folder downloads.
import { attempt, change, read } from './api.ts'
import { $, button, el, formatBytes } from './dom.ts'
import { play } from './player.ts'

type Listing = {
  username: string
  state: string
  path: string
  folders: { name: string; files: number; bytes: number }[]
  files: { name: string; size: number; sha256: string }[]
}

const panel = $('browse-panel')
const bar = $('browse-bar')
const list = $('browse')

const join = (path: string, name: string) => (path ? `${path}/${name}` : name)

export function openBrowse(user: string, path: string) {
  attempt(async () => {
    const listing = await read<Listing>('browse', { user, path })
    panel.hidden = false
    const up = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : ''
    bar.replaceChildren(
      el('span', { class: 'name', text: `${listing.username}/${listing.path} (${listing.state})` }),
      ...(path ? [button('Up', () => openBrowse(user, up))] : []),
      button(
        'Download folder',
        attempt(() => change('download-folder', { user, path })),
        { class: 'primary' },
      ),
    )
    list.replaceChildren(
      ...listing.folders.map((f) =>
        el(
          'li',
          {},
          button(`${f.name}/`, () => openBrowse(user, join(listing.path, f.name)), { class: 'link' }),
          el('span', { class: 'meta', text: `${f.files} files · ${formatBytes(f.bytes)}` }),
        ),
      ),
      ...listing.files.map((f) =>
        el(
          'li',
          {},
          el('span', { class: 'name', text: f.name }),
          el('span', { class: 'meta', text: formatBytes(f.size) }),
          button(
            'Download',
            attempt(() => change('download', { sha256: f.sha256 })),
            { 'aria-description': f.name },
          ),
          button('Play', play(f.sha256, f.name), { 'aria-description': f.name }),
        ),
      ),
    )
    panel.scrollIntoView({ block: 'nearest' })
  })()
}
