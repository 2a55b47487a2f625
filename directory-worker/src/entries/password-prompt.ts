/** All of stdin, less one trailing line break: `printf %s "$PW" | ...` and `echo "$PW" | ...` alike. */
export async function readPasswordFromStdin(): Promise<string> {
  let text = ''
  for await (const chunk of process.stdin) text += chunk
  return text.replace(/\r?\n$/, '')
}

/** Reads one line from the terminal without echoing it. */
export function readHiddenLine(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    const input = process.stdin
    process.stderr.write(prompt)
    input.setRawMode(true)
    input.resume()
    let value = ''
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          input.setRawMode(false)
          input.pause()
          input.off('data', onData)
          process.stderr.write('\n')
          resolve(value)
          return
        }
        if (ch === '\u0003') process.exit(130)
        if (ch === '\u007f') value = value.slice(0, -1)
        else value += ch
      }
    }
    input.on('data', onData)
  })
}
