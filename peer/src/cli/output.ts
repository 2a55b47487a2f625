/** Human text and --json come from the same result; JSON is one document on stdout. */
export function emit<T>(json: boolean, result: T, human: (result: T) => string) {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? Number(v) : v), 2)}\n`)
  } else {
    const text = human(result)
    if (text) process.stdout.write(`${text}\n`)
  }
}
