import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs'
import { freemem, hostname, tmpdir } from 'node:os'
import { join } from 'node:path'

/** Room a run needs at most at once (four files' folders: databases, shared files, downloads); 1.9 GB measured. */
const RUN_BYTES = 6 * 1024 ** 3
const RUN_PREFIX = 'peerdir-run-'
const MEMORY_FS = '/dev/shm'

/**
 * Whether the memory filesystem can hold a run: room in it and in RAM (its pages are RAM, and its size
 * may exceed the RAM free), and programs run from it (installed-package starts the bins it installs in
 * TMPDIR; a container's /dev/shm is often mounted noexec).
 */
function memoryFsFits(): boolean {
  try {
    const fs = statfsSync(MEMORY_FS)
    if (fs.bavail * fs.bsize < RUN_BYTES || freemem() < RUN_BYTES) return false
    const probe = mkdtempSync(join(MEMORY_FS, 'peerdir-exec-'))
    try {
      const script = join(probe, 'probe.sh')
      writeFileSync(script, '#!/bin/sh\nexit 0\n')
      chmodSync(script, 0o755)
      execFileSync(script, { stdio: 'ignore' })
      return true
    } finally {
      rmSync(probe, { recursive: true, force: true })
    }
  } catch {
    return false // none here, or noexec
  }
}

/**
 * Where the run's folder goes: `PEERDIR_TEST_TMPDIR` if set; else the machine's memory filesystem when
 * it fits a run; else TMPDIR. The suite writes gigabytes of SQLite pages and file bytes it deletes
 * minutes later; on this machine's disk the kernel's writeback cost the database-heavy files a third
 * of their time (`index-writes` 120 s alone, 74 s on tmpfs; `load` 107 s and 66 s). What is tested is
 * the same code making the same filesystem calls.
 */
function runBase(): string {
  return process.env.PEERDIR_TEST_TMPDIR || (memoryFsFits() ? MEMORY_FS : tmpdir())
}

const read = (path: string) => {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return ''
  }
}

/** When process `pid` started (clock ticks since boot), or '' when there is no such process. */
const startTime = (pid: number) => read(`/proc/${pid}/stat`).split(') ')[1]?.split(' ')[19] ?? ''

/**
 * Who made a run's folder, precisely enough to tell it gone: its pid with the pid's start time (a pid
 * is reused), on this boot, in this pid namespace and on this host (a container sharing the folder
 * sees other pids).
 */
function ownerRecord(pid: number): string {
  let pidNamespace = ''
  try {
    pidNamespace = readlinkSync('/proc/self/ns/pid')
  } catch {
    // not Linux: the pid alone
  }
  return JSON.stringify({
    pid,
    started: startTime(pid),
    boot: read('/proc/sys/kernel/random/boot_id'),
    pidNamespace,
    host: hostname(),
  })
}

/** Whether the run that wrote `record` has certainly ended: only what this process (`here`) can see is judged. */
function ownerGone(record: string, here: { host: string; boot: string; pidNamespace: string }): boolean {
  let owner: { pid?: unknown; started?: unknown; boot?: unknown; pidNamespace?: unknown; host?: unknown }
  try {
    owner = JSON.parse(record)
  } catch {
    return false
  }
  if (owner.host !== here.host) return false
  if (owner.boot !== here.boot) return true // the machine restarted since: every process of then is gone
  if (owner.pidNamespace !== here.pidNamespace || typeof owner.pid !== 'number') return false
  return startTime(owner.pid) !== owner.started
}

/**
 * Folders of earlier runs killed before their teardown (kill -9, a closed terminal): in a memory
 * filesystem they hold RAM until the machine restarts. A folder whose owner is certainly gone is
 * removed; another run going on beside this one keeps its own, and so does a folder of unknown owner.
 */
function removeAbandonedRuns(base: string) {
  let names: string[] = []
  try {
    names = readdirSync(base)
  } catch {
    return
  }
  const here = JSON.parse(ownerRecord(process.pid))
  for (const name of names) {
    if (!name.startsWith(RUN_PREFIX)) continue
    const owner = join(base, name, 'owner')
    if (!existsSync(owner) || !ownerGone(read(owner), here)) continue
    try {
      rmSync(join(base, name), { recursive: true, force: true })
    } catch (err) {
      console.warn(`could not remove the abandoned test folder ${join(base, name)}: ${String(err)}`)
    }
  }
}

/**
 * Vitest's globalSetup: one folder for the whole run (see runBase), made the TMPDIR of every test file
 * (each takes a folder of its own inside it, see `test-file-setup.ts`) and of every process they
 * start, and removed when the run ends, failed or not. The bins' compile cache is shared by the run's
 * files in it.
 */
export default function setup() {
  // Abandoned runs are looked for wherever a run may have gone, before the memory filesystem's room is.
  for (const base of new Set([MEMORY_FS, tmpdir(), process.env.PEERDIR_TEST_TMPDIR].filter(Boolean)))
    removeAbandonedRuns(base as string)
  const root = mkdtempSync(join(runBase(), RUN_PREFIX))
  writeFileSync(join(root, 'owner'), ownerRecord(process.pid))
  const compileCache = join(root, 'node-compile-cache')
  mkdirSync(compileCache)
  process.env.TMPDIR = root
  process.env.NODE_COMPILE_CACHE = compileCache
  return () => rmSync(root, { recursive: true, force: true })
}
