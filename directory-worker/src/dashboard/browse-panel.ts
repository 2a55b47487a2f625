// The dashboard's browse panel: one level of a peer's folders at a time, each folder and file with a
// ready `peer get` line to copy. Opened from a peer's row or a search result.
import type { PeerFiles } from '../../../contract/api-types.ts'
import { api } from './api.ts'
import { $, copyLine, el, setText } from './dom.ts'
import { childPath, folderText, formatBytes, peerGetLine } from './view-model.ts'

/** The folder the browse panel shows, and whose. */
let browsing: { username: string; path: string } | undefined

/** One level of a peer's folders in the panel, each with a ready `peer get user/folder` line. */
async function browse(username: string, path: string) {
  const query = new URLSearchParams({ path })
  const level = await api<PeerFiles>(`/v1/peers/${encodeURIComponent(username)}/files?${query}`)
  browsing = { username: level.username, path: level.path }
  const getLine = (at: string, what: string) =>
    copyLine(peerGetLine(level.username, at), `Copy the peer get command for ${what}`)
  setText($('browse-title'), level.path ? `${level.username}/${level.path}` : `${level.username}’s folders`)
  $('browse-up').hidden = level.path === ''
  $('browse-get').replaceChildren(...(level.path ? [getLine(level.path, level.path)] : []))
  $('browse-folders').replaceChildren(
    ...level.folders.map((folder) => {
      const at = childPath(level.path, folder.name)
      return el(
        'li',
        { class: 'result', 'data-folder': at },
        el('h3', {}, el('button', { type: 'button', 'data-open': at, text: folder.name })),
        el('p', { class: 'row muted', text: folderText(folder.files, folder.bytes) }),
        el('p', { class: 'row' }, getLine(at, at)),
      )
    }),
  )
  $('browse-files').replaceChildren(
    ...level.files.map((file) =>
      el(
        'li',
        { class: 'result', 'data-sha256': file.sha256 },
        el('h3', { text: file.name }),
        el(
          'p',
          { class: 'row' },
          el('span', { text: formatBytes(file.size) }),
          el('code', { title: file.sha256, text: file.sha256.slice(0, 12) }),
        ),
        el('p', { class: 'row' }, getLine(childPath(level.path, file.name), file.name)),
      ),
    ),
  )
  const panel = $('browse')
  panel.hidden = false
  panel.scrollIntoView({ block: 'nearest' })
}

/**
 * Handles a click meant for the panel (a peer's or folder's open button, up, close); false when the
 * click was for something else.
 */
export function browseClicked(target: Element, report: (err: unknown) => void): boolean {
  const opener = target.closest<HTMLButtonElement>('button[data-browse], button[data-open]')
  if (opener) {
    const username = opener.dataset.browse ?? browsing?.username ?? ''
    browse(username, opener.dataset.open ?? '').catch(report)
    return true
  }
  if (target.closest('#browse-up') && browsing) {
    browse(browsing.username, browsing.path.split('/').slice(0, -1).join('/')).catch(report)
    return true
  }
  if (target.closest('#browse-close')) {
    $('browse').hidden = true
    browsing = undefined
    return true
  }
  return false
}
