/**
 * Text for a terminal with every control character but the line break shown as an escape (`\x1b`):
 * names and URLs come from other peers, and an escape sequence among them must not reach the terminal.
 */
export const printable = (text: string) =>
  text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  )

/** Human text and --json come from the same result; JSON is one document on stdout. */
export function emit<T>(json: boolean, result: T, human: (result: T) => string) {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? Number(v) : v), 2)}\n`)
  } else {
    const text = human(result)
    if (text) process.stdout.write(`${printable(text)}\n`)
  }
}
