// The dashboard script's DOM helpers: find, build and update nodes, copy text. Text from the network
// only ever goes in through textContent and attributes.

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const node = document.getElementById(id)
  if (!node) throw new Error(`the page has no #${id}`)
  return node as T
}

/** Polls rewrite only what changed, so screen readers do not hear the same status every few seconds. */
export function setText(node: Element | null, text: string) {
  if (node && node.textContent !== text) node.textContent = text
}

export function el(
  tag: string,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElement {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value
    else node.setAttribute(key, value)
  }
  node.append(...children)
  return node
}

export const copyLine = (text: string, label: string, display?: string) =>
  el(
    'span',
    { class: 'copy' },
    el('code', { title: text, 'data-copy': text, text: display ?? text }),
    el('button', { type: 'button', class: 'js-only', 'aria-label': label, 'data-copy': text, text: 'Copy' }),
  )

export async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text)
    return true
  } catch {
    // Plain http on a LAN is not a secure context, so no clipboard API: copy from a selection instead.
    const area = el('textarea', { readonly: '', class: 'offscreen' }) as HTMLTextAreaElement
    area.value = text
    document.body.append(area)
    area.select()
    const done = document.execCommand('copy')
    area.remove()
    return done
  }
}
