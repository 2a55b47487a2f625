// Play: a content in the page through the gateway's capability URL, while it downloads (Range, so
// seeking works); audio, video, an image or the start of a text.
import { attempt, change } from './api.ts'
import { $, el } from './dom.ts'

const panel = $('player-panel')
const stage = $('player')

export const play = (sha256: string, name: string) =>
  attempt(async () => {
    const { url, type } = await change<{ url: string; type: string }>('play', { sha256, name })
    panel.hidden = false
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
