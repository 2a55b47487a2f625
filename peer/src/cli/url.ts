import { daemonCommand, daemonFor, jsonOption } from './common.ts'
import { emit } from './output.ts'

/**
 * `peer url`: the daemon's gateway URL of a content, for a player or a browser on this machine. The URL
 * carries the capability that lets its reader make the daemon fetch what it does not have yet; without
 * one, the gateway serves only what this peer shares already.
 */
export const urlCommand = daemonCommand(
  'url',
  'print the local gateway URL of a content, for a player or browser on this machine',
)
  .argument('<name-or-sha256>', 'a content hash, or a file name from `peer search`')
  .addOption(jsonOption())
  .addHelpText(
    'after',
    '\nExamples:\n  mpv "$(peer url lecture.webm)"\n  vlc "$(peer url 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b)"\n\nThe URL lets whoever holds it make this daemon download that content: give it to programs, not people.',
  )
  .action(async (target: string, opts: { json?: boolean; port?: string }) => {
    const { client } = daemonFor(opts)
    const r = await client.call('contentUrl', { target })
    emit(
      Boolean(opts.json),
      { url: r.url, name: r.name, sha256: r.sha256, size: Number(r.size) },
      (x) => x.url,
    )
  })
