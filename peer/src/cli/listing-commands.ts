import { daemonCommand, daemonFor, jsonOption, wholeNumber } from './common.ts'
import { CliError, EXIT } from './errors.ts'
import { formatBytes, table } from './format.ts'
import { emit } from './output.ts'

export const searchCommand = daemonCommand(
  'search',
  'what the network has: name, size, short hash, live sources, folder (one row per variant)',
)
  .argument('<text...>', 'words in file names and folders (case-insensitive)')
  .option('--limit <n>', 'at most this many results (1-500)', wholeNumber(1, 500), 50)
  .addOption(jsonOption())
  .addHelpText(
    'after',
    '\nExamples:\n  peer search song\n  peer search "nightjar harrow"\n  peer search "live at" --json | jq -r ".results[0].sha256"',
  )
  .action(async (words: string[], opts) => {
    const { client } = daemonFor(opts)
    const query = words.join(' ')
    const response = await client.call('search', { query, limit: opts.limit })
    const results = response.results.map((r) => ({
      name: r.name,
      path: r.path,
      size: Number(r.size),
      sha256: r.sha256,
      chunkSize: r.chunkSize,
      manifest: r.manifest,
      sourceCount: r.sourceCount,
      sources: r.sources.map((s) => ({ username: s.username, url: s.url, key: s.key || null })),
    }))
    // One row per variant: a sha256 that comes more than once (holders disagree on its metadata) is
    // told apart by its manifest; `peer get` tries each variant and keeps the one that verifies.
    const variants = new Map<string, number>()
    for (const r of results) variants.set(r.sha256, (variants.get(r.sha256) ?? 0) + 1)
    const hash = (r: (typeof results)[number]) =>
      (variants.get(r.sha256) ?? 0) > 1
        ? `${r.sha256.slice(0, 12)} (manifest ${r.manifest.slice(0, 8)})`
        : r.sha256.slice(0, 12)
    emit(opts.json, { query, results }, () =>
      table(
        ['NAME', 'SIZE', 'HASH', 'SOURCES', 'FOLDER'],
        results.map((r) => [r.name, formatBytes(r.size), hash(r), String(r.sourceCount), r.path]),
      ),
    )
    if (results.length === 0) {
      if (!opts.json) process.stderr.write(`nothing on the network matches "${query}"\n`)
      process.exitCode = EXIT.notFound
    }
  })

type Uploads = {
  slots: number
  active: { username: string; bytes: number }[]
  queued: { username: string; position: number }[]
}

/** `uploading to bob (1.2 MiB), carol (3 MiB); 2 of 8 slots; waiting: dave, erin` */
export function uploadsLine({ slots, active, queued }: Uploads): string {
  const serving = active.map((a) => `${a.username || 'anonymous'} (${formatBytes(a.bytes)})`).join(', ')
  const first = queued.slice(0, 5).map((q) => q.username)
  if (queued.length > first.length) first.push(`${queued.length - first.length} more`)
  const waiting = first.length ? `; waiting: ${first.join(', ')}` : ''
  return `${serving ? `uploading to ${serving}` : 'uploading to nobody'}; ${active.length} of ${slots} slots${waiting}`
}

export const statusCommand = daemonCommand('status', 'the daemon’s state: who, up or down, what it shares')
  .addOption(jsonOption())
  .addHelpText('after', '\nExample:\n  peer status --json')
  .action(async (opts) => {
    const { client } = daemonFor(opts)
    const s = await client.call('status', {})
    const result = {
      username: s.username,
      state: s.state,
      directory: s.directoryUrl,
      publicUrl: s.publicUrl,
      sharedDir: s.sharedDir,
      files: s.files,
      bytes: Number(s.bytes),
      activeDownloads: s.activeDownloads,
      lastError: s.lastError,
      version: s.version,
      relay: s.relayUrl ? { url: s.relayUrl, registered: s.relayRegistered, lastError: s.relayError } : null,
      punched: { serving: s.punchedServing, fetching: s.punchedFetching },
      uploads: {
        slots: s.uploads?.slots ?? 0,
        active: (s.uploads?.active ?? []).map((a) => ({ username: a.username, bytes: Number(a.bytes) })),
        queued: (s.uploads?.queued ?? []).map((q) => ({ username: q.username, position: q.position })),
      },
      key: s.key || null,
    }
    emit(opts.json, result, (x) =>
      [
        x.state === 'unreachable'
          ? `${x.username} cannot reach the directory at ${x.directory} (${x.lastError})`
          : `${x.username} is ${x.state} in ${x.directory}${x.lastError ? ` (last error: ${x.lastError})` : ''}`,
        `serving ${x.files} files (${formatBytes(x.bytes)}) from ${x.sharedDir} at ${x.publicUrl}`,
        x.key ? `key ${x.key} (TLS; callers pin it)` : 'plaintext: no TLS, no key (--plaintext)',
        ...(x.relay
          ? [
              x.relay.registered
                ? `reached through the relay at ${x.relay.url}`
                : `not registered with the relay at ${x.relay.url} yet${x.relay.lastError ? ` (${x.relay.lastError})` : ''}`,
            ]
          : []),
        ...(x.relay || x.punched.serving + x.punched.fetching > 0
          ? [
              `direct links through NAT: ${x.punched.serving} callers served, ${x.punched.fetching} sources fetched from`,
            ]
          : []),
        uploadsLine(x.uploads),
        `${x.activeDownloads} downloads running; peerdir ${x.version}`,
      ].join('\n'),
    )
  })

export const filesCommand = daemonCommand('files', 'the files this daemon shares')
  .addOption(jsonOption())
  .addHelpText('after', '\nExample:\n  peer files')
  .action(async (opts) => {
    const { client } = daemonFor(opts)
    const response = await client.call('listFiles', {})
    const files = response.files.map((f) => ({
      name: f.name,
      size: Number(f.size),
      sha256: f.sha256,
      path: f.path,
      folder: f.folder,
    }))
    emit(opts.json, { files }, () =>
      table(
        ['NAME', 'SIZE', 'HASH', 'FOLDER'],
        files.map((f) => [f.name, formatBytes(f.size), f.sha256.slice(0, 12), f.folder]),
      ),
    )
  })

export const peersCommand = daemonCommand('peers', 'the network’s peers')
  .option('--state <state>', 'only peers that are up or down')
  .addOption(jsonOption())
  .addHelpText('after', '\nExample:\n  peer peers --state up')
  .action(async (opts) => {
    if (opts.state && opts.state !== 'up' && opts.state !== 'down') {
      throw new CliError('--state must be up or down', EXIT.usage)
    }
    const { client } = daemonFor(opts)
    const response = await client.call('listPeers', { state: opts.state ?? '' })
    const peers = response.peers.map((p) => ({
      username: p.username,
      url: p.url,
      key: p.key || null,
      state: p.state,
      files: p.files,
      lastSeen: p.lastSeen,
      relayed: p.relayed,
    }))
    emit(opts.json, { peers }, () =>
      table(
        ['USER', 'STATE', 'FILES', 'LINK', 'REACHED', 'URL', 'LAST SEEN'],
        peers.map((p) => [
          p.username,
          p.state,
          String(p.files),
          p.key ? 'encrypted' : 'plaintext',
          p.relayed ? 'via relay' : 'direct',
          p.url,
          p.lastSeen,
        ]),
      ),
    )
  })
