import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { killOwned } from './owned-processes.ts'

/**
 * Vitest's setupFiles, run before each test file: the file's temporary folders (every `tmpdir()` it and
 * the processes it starts use) go in one folder of its own, removed after the file's own afterAll hooks
 * (registered first, so run last), once every process the helpers started is gone, failed or not.
 */
const previous = process.env.TMPDIR
const root = mkdtempSync(join(tmpdir(), 'peerdir-file-'))
process.env.TMPDIR = root

afterAll(async () => {
  await killOwned()
  rmSync(root, { recursive: true, force: true })
  if (previous === undefined) delete process.env.TMPDIR
  else process.env.TMPDIR = previous
})
