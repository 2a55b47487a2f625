/**
 * A search's cursor: its publish number (store/publish-sequence.ts) as base64url of `p<number>`,
 * so that clients treat it as opaque and a number typed by hand is refused, not misread.
 */
export function encodeCursor(published: number): string {
  return btoa(`p${published}`).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

/** The publish number of a cursor this directory gave, or undefined for anything else. */
export function decodeCursor(cursor: string): number | undefined {
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(cursor)) return undefined
  let text: string
  try {
    text = atob(cursor.replaceAll('-', '+').replaceAll('_', '/'))
  } catch {
    return undefined
  }
  const digits = /^p(0|[1-9][0-9]{0,15})$/.exec(text)?.[1]
  if (digits === undefined) return undefined
  const published = Number(digits)
  return Number.isSafeInteger(published) && encodeCursor(published) === cursor ? published : undefined
}
