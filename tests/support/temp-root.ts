import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Vitest's globalSetup: one folder for the whole run in the machine's TMPDIR, made the TMPDIR of every
 * test file (each takes a folder of its own inside it, see `test-file-setup.ts`) and of every process
 * they start, and removed when the run ends, failed or not. The bins' compile cache is shared by the
 * run's files in it.
 */
export default function setup() {
  const root = mkdtempSync(join(tmpdir(), 'peerdir-run-'))
  const compileCache = join(root, 'node-compile-cache')
  mkdirSync(compileCache)
  process.env.TMPDIR = root
  process.env.NODE_COMPILE_CACHE = compileCache
  return () => rmSync(root, { recursive: true, force: true })
}
