import { describeDirectoryApi } from '../support/api-suite.ts'
import { startWorkerdDirectory } from '../support/workerd-directory.ts'

// The Workers build in real workerd with nothing configured: the D1 binding DB of wrangler.toml, kept
// locally as `wrangler dev` keeps it (here in a fresh temp folder per directory).
describeDirectoryApi('Workers (workerd, local D1)', (env) => startWorkerdDirectory(env))
