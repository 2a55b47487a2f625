import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Room a run needs at most at once (three files' folders: databases, shared files, downloads). */
const RUN_BYTES = 6 * 1024 ** 3
const RUN_PREFIX = 'peerdir-run-'

/**
 * Where the run's folder goes: `PEERDIR_TEST_TMPDIR` if set; else the machine's memory filesystem
 * (`/dev/shm`) when it has room for a run; else TMPDIR. The suite writes gigabytes of SQLite pages and
 * file bytes it deletes minutes later; on this machine's disk the kernel's writeback cost the
 * database-heavy files a third of their time (`index-writes` 120 s alone, 74 s on tmpfs; `load` 107 s
 * and 66 s). What is tested is the same code on the same kind of filesystem calls.
 */
function runBase(): string {
  const chosen = process.env.PEERDIR_TEST_TMPDIR
  if (chosen) return chosen
  try {
    const shm = statfsSync('/dev/shm')
    if (shm.bavail * shm.bsize >= RUN_BYTES) return '/dev/shm'
  } catch {
    // no memory filesystem here
  }
  return tmpdir()
}

/** Whether process `pid` is alive (signal 0 checks without sending). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Folders of earlier runs that were killed before their teardown (kill -9, a closed terminal): in a
 * memory filesystem they would hold RAM until the machine restarts. A run's folder names the process
 * that made it; one whose process is gone is removed. Another run going on beside this one keeps its own.
 */
function removeAbandonedRuns(base: string) {
  for (const name of readdirSync(base)) {
    if (!name.startsWith(RUN_PREFIX)) continue
    const owner = join(base, name, 'owner')
    if (!existsSync(owner)) continue
    const pid = Number.parseInt(readFileSync(owner, 'utf8'), 10)
    if (Number.isInteger(pid) && pid > 0 && !alive(pid))
      rmSync(join(base, name), { recursive: true, force: true })
  }
}

/**
 * Vitest's globalSetup: one folder for the whole run (see runBase), made the TMPDIR of every test file
 * (each takes a folder of its own inside it, see `test-file-setup.ts`) and of every process they
 * start, and removed when the run ends, failed or not. The bins' compile cache is shared by the run's
 * files in it.
 */
export default function setup() {
  const base = runBase()
  removeAbandonedRuns(base)
  const root = mkdtempSync(join(base, RUN_PREFIX))
  writeFileSync(join(root, 'owner'), String(process.pid))
  const compileCache = join(root, 'node-compile-cache')
  mkdirSync(compileCache)
  process.env.TMPDIR = root
  process.env.NODE_COMPILE_CACHE = compileCache
  return () => rmSync(root, { recursive: true, force: true })
}
