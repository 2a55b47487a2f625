import { spawn } from 'node:child_process'
import type { DaemonEvent } from './daemon-events.ts'

/** A hook still running after this long is killed, with everything it started. */
export const HOOK_TIMEOUT_MS = 60_000
/** Completions waiting for the hook at most; past it, further ones are logged and skipped. */
const MAX_WAITING = 1000

type Completed = Extract<DaemonEvent, { type: 'download-completed' }>

/**
 * `peer start --on-complete <command>`: runs the user's own command, through a shell, after each
 * verified download, one at a time. What the download is (names from the network included) reaches it
 * only in its environment (PEERDIR_PATH, PEERDIR_NAME, PEERDIR_SHA256, PEERDIR_SIZE), never in the text
 * the shell parses. A failing or hanging hook is logged (and a hung one killed), never the daemon's end.
 */
export class CompletionHook {
  readonly #command: string
  readonly #log: (line: string) => void
  readonly #timeoutMs: number
  readonly #waiting: Completed[] = []
  #running = false

  constructor(command: string, log: (line: string) => void, timeoutMs = HOOK_TIMEOUT_MS) {
    this.#command = command
    this.#log = log
    this.#timeoutMs = timeoutMs
  }

  /** Listens to the daemon's events: runs for each completed download that was kept (has a path). */
  readonly listener = (event: DaemonEvent) => {
    if (event.type !== 'download-completed' || !event.path) return
    if (this.#waiting.length >= MAX_WAITING) {
      this.#log(`on-complete: ${MAX_WAITING} downloads already wait for the hook; skipped ${event.sha256}`)
      return
    }
    this.#waiting.push(event)
    if (!this.#running)
      this.#drain().catch((err) =>
        this.#log(`on-complete: ${err instanceof Error ? err.message : String(err)}`),
      )
  }

  async #drain() {
    this.#running = true
    try {
      for (let next = this.#waiting.shift(); next; next = this.#waiting.shift()) await this.#run(next)
    } finally {
      this.#running = false
    }
  }

  #run(completed: Completed): Promise<void> {
    return new Promise((resolve) => {
      const env = {
        ...process.env,
        PEERDIR_PATH: completed.path,
        PEERDIR_NAME: completed.name,
        PEERDIR_SHA256: completed.sha256,
        PEERDIR_SIZE: String(completed.size),
      }
      // Its own process group, so a hung hook is killed with whatever it started.
      const child = spawn(this.#command, { shell: true, env, stdio: 'inherit', detached: true })
      const timer = setTimeout(() => {
        this.#log(
          `on-complete: still running after ${this.#timeoutMs / 1000} s for ${completed.sha256}; killed`,
        )
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL')
        } catch {}
      }, this.#timeoutMs)
      let settled = false
      const settle = (outcome: string | undefined) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        if (outcome) this.#log(`on-complete: ${outcome} for ${completed.sha256}`)
        resolve()
      }
      child.once('error', (err) => settle(`could not run the hook: ${err.message}`))
      child.once('exit', (code, signal) =>
        settle(code === 0 ? undefined : signal ? `the hook ended by ${signal}` : `the hook exited ${code}`),
      )
    })
  }
}
