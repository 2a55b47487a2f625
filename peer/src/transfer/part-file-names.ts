import { join } from 'node:path'

/** What a temporary name adds to the file's own: `.`, `.<12 hex>.part`, then `.json` and `.tmp` for the record. */
const TEMP_NAME_EXTRA_BYTES = '.'.length + '.123456789abc.part'.length + '.json.tmp'.length
/** The longest file name Linux, macOS and Windows file systems take, in bytes. */
const MAX_NAME_BYTES = 255

/** `text` cut to at most `max` UTF-8 bytes, never inside a character. */
function fitBytes(text: string, max: number): string {
  let fitted = ''
  let bytes = 0
  for (const character of text) {
    bytes += Buffer.byteLength(character)
    if (bytes > max) break
    fitted += character
  }
  return fitted
}

/** The hidden .part and its record: the name shortened so that even `<record>.tmp` fits; the hash keeps them apart. */
export const partFileNames = (outDir: string, target: { name: string; sha256: string }) => {
  const name = fitBytes(target.name, MAX_NAME_BYTES - TEMP_NAME_EXTRA_BYTES)
  const base = join(outDir, `.${name}.${target.sha256.slice(0, 12)}.part`)
  return { temp: base, record: `${base}.json` }
}
