import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import workerThreads from 'node:worker_threads'
import { getPlatformProxy } from 'wrangler'
import { type D1Binding, d1Database } from '../../directory-worker/src/store/d1-client.ts'
import type { Database } from '../../directory-worker/src/store/database.ts'
import { ownDisposal } from './owned-processes.ts'

/**
 * Miniflare's platform proxy makes synchronous calls through a worker thread (fetch-sync.ts): it posts
 * the call, waits on a shared flag until the thread says "answered" (store 1, then notify), and takes
 * the answer. It does not check that the answer is there: a thread held up between its store and its
 * notify (a loaded machine) wakes the next call's wait with that late notify, before that call is
 * answered, and the proxy fails `assert(message?.id === id)`. A 30 ms pause put there in miniflare's
 * code failed every run of index-pieces-backends.test.ts that way. While a local D1 is open, taking a
 * message off a port waits for it (1 ms at a time, up to a minute) instead of finding none.
 */
const receiveMessageOnPort = workerThreads.receiveMessageOnPort
const sleeper = new Int32Array(new SharedArrayBuffer(4))
let openLocalD1s = 0
function receiveOnceThere(port: Parameters<typeof receiveMessageOnPort>[0]) {
  const deadline = Date.now() + 60_000
  for (;;) {
    const message = receiveMessageOnPort(port)
    if (message !== undefined || Date.now() > deadline) return message
    Atomics.wait(sleeper, 0, 0, 1)
  }
}
function waitForAnswers(on: boolean) {
  openLocalD1s += on ? 1 : -1
  workerThreads.receiveMessageOnPort = openLocalD1s > 0 ? receiveOnceThere : receiveMessageOnPort
}

/**
 * The D1 binding DB of wrangler.toml as `wrangler dev` gives it (workerd's local D1, with D1's limits
 * and its refusals), reached from Node through wrangler's platform proxy; state in a temp folder.
 */
export async function openLocalD1(): Promise<{
  binding: D1Binding
  db: Database
  close: () => Promise<void>
}> {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-d1-'))
  waitForAnswers(true)
  try {
    const proxy = await getPlatformProxy<{ DB: D1Binding }>({ persist: { path: dir } })
    // Closed after the file even when its test gave up before closing it (killOwned): the files that
    // follow in this worker must not keep workerd running, nor the patched port reads.
    const close = ownDisposal(async () => {
      try {
        await proxy.dispose()
      } finally {
        waitForAnswers(false)
        rmSync(dir, { recursive: true, force: true })
      }
    })
    return { binding: proxy.env.DB, db: d1Database(proxy.env.DB), close }
  } catch (err) {
    waitForAnswers(false)
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}
