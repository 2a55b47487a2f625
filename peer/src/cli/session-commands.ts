import { daemonCommand, daemonFor, jsonOption } from './common.ts'
import { DEFAULT_PORT } from './daemon-client.ts'
import { emit } from './output.ts'

export const loginCommand = daemonCommand(
  'login',
  'bring the daemon up in the directory (log in and publish)',
)
  .addOption(jsonOption())
  .addHelpText('after', `\nExample:\n  peer login --port ${DEFAULT_PORT}`)
  .action(async (opts) => {
    const { client } = daemonFor(opts)
    const result = await client.call('login', {})
    emit(opts.json, { state: result.state }, () => 'logged in; the peer is up')
  })

export const logoutCommand = daemonCommand(
  'logout',
  'take the daemon down in the directory (it keeps running)',
)
  .addOption(jsonOption())
  .addHelpText('after', `\nExample:\n  peer logout --port ${DEFAULT_PORT}`)
  .action(async (opts) => {
    const { client } = daemonFor(opts)
    const result = await client.call('logout', {})
    emit(opts.json, { state: result.state }, () => 'logged out; the peer is down')
  })

export const indexCommand = daemonCommand('index', 'rescan the shared folder and publish what changed')
  .addOption(jsonOption())
  .addHelpText('after', '\nExample:\n  peer index')
  .action(async (opts) => {
    const { client } = daemonFor(opts)
    const r = await client.call('reindex', {})
    const result = { files: r.files, added: r.added, removed: r.removed, moved: r.moved, hashed: r.hashed }
    emit(
      opts.json,
      result,
      (x) =>
        `${x.files} files shared (${x.added} added, ${x.removed} removed, ${x.moved} moved, ${x.hashed} hashed)`,
    )
  })
