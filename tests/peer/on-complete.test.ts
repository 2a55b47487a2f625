import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { DaemonEvent } from '../../peer/src/daemon/daemon-events.ts'
import { CompletionHook } from '../../peer/src/daemon/on-complete.ts'
import { until } from '../support/peer-process.ts'

/** Whether `pid` runs (a killed process nobody has reaped yet does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

const completed = (name: string): DaemonEvent => ({
  type: 'download-completed',
  time: new Date().toISOString(),
  name,
  sha256: 'ab'.repeat(32),
  size: 3,
  path: `/shared/${name}`,
  seconds: 0.1,
  sources: ['alice'],
})

describe('CompletionHook', () => {
  it('runs one at a time, logs a failure, kills a hang with what it started, and goes on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-hook-'))
    const log: string[] = []
    // "hang" sleeps in a child of the shell (the group is killed), "fail" exits 3, the rest note their name.
    const command = `cd '${dir}' && case "$PEERDIR_NAME" in hang) sleep 30 & echo $! > sleep.pid; wait ;; fail) exit 3 ;; *) echo "$PEERDIR_NAME" >> order.txt ;; esac`
    const hook = new CompletionHook(command, (line) => log.push(line), 300)
    for (const name of ['first', 'hang', 'fail', 'last']) hook.listener(completed(name))
    await until(
      async () =>
        existsSync(join(dir, 'order.txt')) && readFileSync(join(dir, 'order.txt'), 'utf8').includes('last'),
      'the last hook',
    )
    expect(readFileSync(join(dir, 'order.txt'), 'utf8')).toBe('first\nlast\n')
    // The hung hook's own child went with it.
    const sleeper = Number(readFileSync(join(dir, 'sleep.pid'), 'utf8'))
    await until(async () => !running(sleeper), 'the hung hook’s child to be gone', 5_000)
    expect(log).toEqual([
      expect.stringMatching(/still running after 0.3 s .*; killed/),
      expect.stringMatching(/the hook ended by SIGKILL/),
      expect.stringMatching(/the hook exited 3/),
    ])
  })
})
