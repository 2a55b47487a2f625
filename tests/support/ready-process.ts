import { type ChildProcess, spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { own } from './owned-processes.ts'

export type ReadyProcess = {
  child: ChildProcess
  /** What it wrote so far, stdout and stderr together as they came. */
  output: () => string
  /** The ready line's match. */
  ready: RegExpExecArray
  /** The port the ready line names (its `port` group). */
  port: number
  /** Resolves once `pattern` matches the output; rejects if the process ends or `timeoutMs` passes first. */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>
  /** Sends `signal` (unless it has ended) and resolves with its exit code once it has. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/**
 * Starts a process (owned: killed after the test file whatever happens), waits for its ready line and
 * reads the port it listens on from that line's `(?<port>\d+)` group: a server started with `--port 0`
 * says there which port the kernel gave it. `name` names it in errors, which carry its output.
 */
export async function startReadyProcess(options: {
  name: string
  command: string[]
  cwd: string
  env?: NodeJS.ProcessEnv
  ready: RegExp
  timeoutMs?: number
}): Promise<ReadyProcess> {
  const [command, ...args] = options.command
  const child = own(
    spawn(command as string, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  )
  let output = ''
  const changes = new EventEmitter()
  const append = (chunk: Buffer) => {
    output += chunk
    changes.emit('output')
  }
  child.stdout?.on('data', append)
  child.stderr?.on('data', append)
  // 'close' comes once its output is all read, after its exit.
  let closed = false
  child.once('close', () => {
    closed = true
    changes.emit('closed')
  })
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode)
    else child.once('exit', (code) => resolve(code))
  })

  const waitFor = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer)
        changes.off('output', look)
        changes.off('closed', ended)
      }
      const look = () => {
        const match = pattern.exec(output)
        if (!match) return false
        done()
        resolve(match)
        return true
      }
      const ended = () => {
        done()
        const how = child.signalCode ?? child.exitCode
        reject(new Error(`${options.name} ended (${how}) before ${pattern}:\n${output}`))
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${options.name}: no ${pattern} in ${timeoutMs} ms:\n${output}`))
      }, timeoutMs)
      changes.on('output', look)
      changes.on('closed', ended)
      if (!look() && closed) ended()
    })

  let ready: RegExpExecArray
  try {
    ready = await waitFor(options.ready, options.timeoutMs)
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  const port = Number(ready.groups?.port)
  if (!Number.isInteger(port) || port <= 0) {
    child.kill('SIGKILL')
    throw new Error(`${options.name}: its ready line names no port: ${ready[0]}`)
  }
  return {
    child,
    output: () => output,
    ready,
    port,
    waitFor,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}
