import { resolve } from 'node:path'
import { daemonCommand, daemonFor, jsonOption } from './common.ts'
import { formatBytes } from './format.ts'
import { emit } from './output.ts'

export const pushCommand = daemonCommand('push', 'upload a file to a peer that accepts uploads')
  .argument('<file>', 'the file to send')
  .requiredOption('--to <username>', 'the receiving peer')
  .addOption(jsonOption())
  .addHelpText('after', '\nExample:\n  peer push ./notes.pdf --to bob')
  .action(async (file: string, opts) => {
    const { client } = daemonFor(opts)
    const r = await client.call('push', { path: resolve(file), toUsername: opts.to })
    emit(
      opts.json,
      { name: r.name, size: Number(r.size), sha256: r.sha256, to: opts.to },
      (x) =>
        `sent ${x.name} (${formatBytes(x.size)}) to ${x.to}; they verified sha256 ${x.sha256.slice(0, 12)}`,
    )
  })
