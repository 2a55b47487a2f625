import { execFileSync } from 'node:child_process'
import { until } from './peer-process.ts'

export type Terminal = {
  /** What the terminal shows, scroll-back included. */
  screen: () => string
  waitFor: (text: string | RegExp, timeoutMs?: number) => Promise<unknown>
  /** Keys as tmux names them: text, 'Enter', 'C-c'. */
  keys: (...keys: string[]) => void
  /** Types a line, presses Enter, and waits for `after` on screen. */
  type: (line: string, after: string | RegExp) => Promise<unknown>
  close: () => void
}

/** A shell command on a real terminal: a 160 x 50 tmux session of its own, read with capture-pane. */
export function startTerminal(name: string, command: string): Terminal {
  const session = `peerdir-${name}-${process.pid}`
  const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' })
  tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '50', command)
  const screen = () => tmux('capture-pane', '-p', '-t', session, '-S', '-200')
  const waitFor = (text: string | RegExp, timeoutMs?: number) =>
    until(
      async () => (typeof text === 'string' ? screen().includes(text) : text.test(screen())),
      `"${text}" on screen:\n${screen()}`,
      timeoutMs,
    )
  const keys = (...names: string[]) => {
    tmux('send-keys', '-t', session, ...names)
  }
  return {
    screen,
    waitFor,
    keys,
    type: async (line, after) => {
      keys(line, 'Enter')
      await waitFor(after)
    },
    close: () => {
      tmux('kill-session', '-t', session)
    },
  }
}
