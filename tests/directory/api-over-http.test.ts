import { describeDirectoryApi } from '../support/api-suite.ts'
import { startDirectoryProcess } from '../support/directory-process.ts'

describeDirectoryApi('Node (a real process, embedded libSQL)', (env) => startDirectoryProcess({ env }))
