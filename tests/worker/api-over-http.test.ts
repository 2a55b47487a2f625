import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describeDirectoryApi } from '../support/api-suite.ts'
import { startHranaServer } from '../support/hrana-server.ts'
import { startWorkerdDirectory } from '../support/workerd-directory.ts'

// The Workers build in real workerd, over the one storage backend it has: libSQL over HTTP (Turso), here
// the Hrana stand-in serving a real libSQL file.
describeDirectoryApi('Workers (workerd, libSQL over HTTP)', async (env) => {
  const dbPath = join(mkdtempSync(join(tmpdir(), 'peerdir-worker-api-')), 'turso-stand-in.db')
  const hrana = await startHranaServer({ path: dbPath, authToken: 'api-suite-token' })
  const worker = await startWorkerdDirectory({
    LIBSQL_URL: hrana.url,
    LIBSQL_AUTH_TOKEN: 'api-suite-token',
    ...env,
  }).catch(async (err) => {
    await hrana.close()
    throw err
  })
  return {
    url: worker.url,
    stop: async () => {
      try {
        await worker.stop()
      } finally {
        await hrana.close()
      }
    },
  }
})
