import type { ChildProcess } from 'node:child_process'

/** Every process the helpers started in this test file and not yet seen exit, with how to end it. */
const owned = new Map<ChildProcess, { group: boolean }>()

/**
 * Records a process a helper started, so `killOwned` ends it after the file even when the test that
 * started it failed before stopping it. `group`: the process leads a group of its own (spawned
 * `detached`) whose members go with it.
 */
export function own<T extends ChildProcess>(child: T, options: { group?: boolean } = {}): T {
  owned.set(child, { group: options.group ?? false })
  child.once('exit', () => owned.delete(child))
  return child
}

/** How to end what a helper runs inside the test's own process (Miniflare's workerd), by file. */
const disposers = new Set<() => Promise<unknown>>()

/**
 * Records how to end something a helper started that is no child process of its own to kill, so
 * `killOwned` ends it after the file; the returned function ends it now, once, whoever asks first.
 */
export function ownDisposal(dispose: () => Promise<unknown>): () => Promise<void> {
  let ended: Promise<void> | undefined
  const end = () => {
    ended ??= (async () => {
      disposers.delete(end)
      await dispose()
    })()
    return ended
  }
  disposers.add(end)
  return end
}

/**
 * Kills (SIGKILL) every owned process still running and waits until each has exited; ends every owned
 * disposal (a failure to end one does not stop the rest).
 */
export async function killOwned(): Promise<void> {
  await Promise.allSettled([...disposers].map((end) => end()))
  await Promise.all(
    [...owned].map(async ([child, { group }]) => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      try {
        process.kill(group ? -child.pid : child.pid, 'SIGKILL')
      } catch {
        return
      }
      await exited
    }),
  )
}
