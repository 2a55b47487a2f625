import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getPlatformProxy } from 'wrangler'
import { type D1Binding, d1Database } from '../../directory-worker/src/store/d1-client.ts'
import type { Database } from '../../directory-worker/src/store/database.ts'

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
  const proxy = await getPlatformProxy<{ DB: D1Binding }>({ persist: { path: dir } })
  return {
    binding: proxy.env.DB,
    db: d1Database(proxy.env.DB),
    close: async () => {
      await proxy.dispose()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
