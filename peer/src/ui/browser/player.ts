// Play: a content in the page through the gateway's capability URL, while it downloads (Range, so
// seeking works); audio, video, an image or the start of a text.
import { attempt, change } from './api.ts'
import { $, el } from './dom.ts'

const panel = $('player-panel')
const stage = $('player')
/** What plays now: its reads of the gateway would start its download again after a Cancel. */
let playing = ''

/** Stops the player if it plays `sha256`, closing its requests. */
export function stopPlaying(sha256: string) {
  if (playing !== sha256) return
  for (const media of stage.querySelectorAll<HTMLMediaElement>('audio, video')) {
    media.removeAttribute('src')
    media.load()
  }
  stage.replaceChildren()
  panel.hidden = true
  playing = ''
}

export const play = (sha256: string, name: string) =>
  attempt(async () => {
    const { url, type } = await change<{ url: string; type: string }>('play', { sha256, name })
    panel.hidden = false
    playing = sha256
    const title = el('p', { class: 'name', text: name })
    if (type.startsWith('audio/') || type.startsWith('video/')) {
      const media = el(type.startsWith('audio/') ? 'audio' : 'video', {
        controls: '',
        autoplay: '',
        src: url,
      })
      media.setAttribute('aria-label', name)
      stage.replaceChildren(title, media)
    } else if (type.startsWith('image/')) {
      stage.replaceChildren(title, el('img', { src: url, alt: name }))
    } else if (type.startsWith('text/') || type === 'application/json') {
      const response = await fetch(url, { headers: { range: 'bytes=0-65535' } })
      stage.replaceChildren(title, el('pre', { text: await response.text() }))
    } else {
      stage.replaceChildren(title, el('p', { text: 'No preview for this kind of file: download it.' }))
    }
    panel.scrollIntoView({ block: 'nearest' })
  })
