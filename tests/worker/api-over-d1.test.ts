import { describeDirectoryApi } from '../support/api-suite.ts'
import { startWranglerDev } from '../support/wrangler-dev.ts'

// The Workers build in real workerd with nothing configured: the D1 binding DB of wrangler.toml, as
// `wrangler dev` keeps it locally (here in a fresh temp folder per directory).
describeDirectoryApi('Workers (workerd via wrangler dev, local D1)', async (env) => {
  const worker = await startWranglerDev(env)
  return { url: worker.url, stop: () => worker.stop() }
})
