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

/** Asks a question on the terminal and resolves with the answer. */
export async function ask(question: string): Promise<string> {
  const { createInterface } = await import('node:readline')
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close()
      resolve(answer)
    })
  })
}
