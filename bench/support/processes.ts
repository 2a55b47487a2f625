import { type ChildProcess, spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'

export const repoRoot = resolve(import.meta.dirname, '../..')
export const nodeBin = join(repoRoot, 'node_modules/.bin/node')

/**
 * Spawns a Node script and resolves once a line of its stdout matches `ready`. The built bins (`dist/`)
 * run as users run them, through their shebang (with its Node flags), on the project's Node.
 */
export function spawnUntil(
  args: string[],
  ready: RegExp,
  env: Record<string, string> = {},
  /** A command it runs under, e.g. `ip netns exec <name>`. */
  wrap: string[] = [],
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const [script = '', ...rest] = args
  const asBin = /(^|\/)dist\/[^/]+\.js$/.test(script)
  const command = [...wrap, ...(asBin ? [join(repoRoot, script), ...rest] : [nodeBin, ...args])]
  const child = spawn(command[0] as string, command.slice(1), {
    cwd: repoRoot,
    env: { ...process.env, PATH: `${join(repoRoot, 'node_modules/.bin')}:${process.env.PATH ?? ''}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  return new Promise((resolvePromise, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk
      const match = ready.exec(output)
      if (match) {
        child.stdout?.off('data', onData)
        child.stdout?.resume()
        resolvePromise({ child, match })
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk) => {
      output += chunk
    })
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}:\n${output}`)))
  })
}

/** Resident memory of a process in MiB, now (VmRSS) or at its peak so far (VmHWM). */
export async function residentMiB(pid: number, which: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(new RegExp(`${which}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024
}

/** Peak resident memory (VmHWM) of a process in MiB. */
export const peakRssMiB = (pid: number) => residentMiB(pid, 'VmHWM')
