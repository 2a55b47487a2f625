/** Reads one line from the terminal without echoing it. */
export function readHiddenLine(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    const input = process.stdin
    process.stdout.write(prompt)
    input.setRawMode?.(true)
    input.resume()
    let value = ''
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          input.setRawMode?.(false)
          input.pause()
          input.off('data', onData)
          process.stdout.write('\n')
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

/**
 * Questions answered a line at a time from stdin, a terminal or a pipe alike: one reader for the whole
 * conversation, so lines a script sends ahead are kept for the questions they answer. `ask` resolves with
 * undefined once the input has ended.
 */
export async function lineReader() {
  const { createInterface } = await import('node:readline')
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: Boolean(process.stdin.isTTY),
  })
  const lines = rl[Symbol.asyncIterator]()
  // A pipe's end closes the reader while lines it read ahead are still to be answered.
  let closed = false
  rl.once('close', () => {
    closed = true
  })
  return {
    async ask(question: string): Promise<string | undefined> {
      if (closed) process.stdout.write(question)
      else {
        rl.setPrompt(question)
        rl.prompt()
      }
      const next = await lines.next()
      return next.done ? undefined : next.value
    },
    close: () => rl.close(),
  }
}
