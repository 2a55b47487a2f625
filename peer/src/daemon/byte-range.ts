/** The bytes [start, end) of a content that a Range header asks for. */
export type ByteRange = { start: number; end: number }

/**
 * The one byte range of a `Range` header (RFC 9110 §14.1.2): `bytes=a-b`, `bytes=a-` or the suffix
 * `bytes=-n`. Undefined when the header is absent, malformed or asks for several ranges: the whole
 * content is then sent with 200, as the RFC allows. 'unsatisfiable' when no byte of it exists (416).
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (!match) return undefined
  const [, first = '', last = ''] = match
  if (first === '' && last === '') return undefined
  if (first === '') {
    const suffix = Number(last)
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size }
  }
  const start = Number(first)
  if (last !== '' && Number(last) < start) return undefined // not a range at all: ignored
  if (start >= size) return 'unsatisfiable'
  const end = last === '' ? size : Math.min(size, Number(last) + 1)
  return { start, end }
}
