import { Command } from 'commander'
import { daemonCommand, daemonFor, jsonOption } from './common.ts'
import type { ControlAnswer } from './control-client.ts'
import { formatBytes, table } from './format.ts'
import { emit } from './output.ts'
import { byteSize } from './start.ts'

type WishAnswer = ControlAnswer<'listWishes'>['wishes'][number]

/** A wish as `--json` prints it: sizes as numbers, absent bounds and times as null. */
const wishJson = (w: WishAnswer) => ({
  id: w.id,
  query: w.query,
  get: w.get,
  minSize: Number(w.minSize) || null,
  maxSize: Number(w.maxSize) || null,
  createdAt: w.createdAt,
  lastRunAt: w.lastRunAt || null,
  lastError: w.lastError || null,
  matches: w.matches.map((m) => ({
    name: m.name,
    path: m.path,
    sha256: m.sha256,
    size: Number(m.size),
    foundAt: m.foundAt,
    fetch: m.fetch || null,
    error: m.error || null,
  })),
})

const addCommand = daemonCommand('add', 'save a search the daemon runs again about every minute')
  .argument('<query>', 'words that must all occur in a file’s path or name, as in `peer search`')
  .option('--get', 'fetch each new match into the shared folder, once', false)
  .option('--min-size <bytes>', 'only files at least this large (e.g. 100M)', byteSize)
  .option('--max-size <bytes>', 'only files at most this large', byteSize)
  .addOption(jsonOption())
  .action(async (query: string, opts) => {
    const { client } = daemonFor(opts)
    const { wish } = await client.call('addWish', {
      query,
      get: opts.get,
      minSize: String(opts.minSize ?? 0),
      maxSize: String(opts.maxSize ?? 0),
    })
    emit(
      opts.json,
      wishJson(wish),
      (w) => `wish ${w.id}: "${w.query}"${w.get ? ', fetching each new match' : ''}`,
    )
  })

const listCommand = daemonCommand('list', 'the saved searches, when each last ran, and its new matches')
  .addOption(jsonOption())
  .action(async (opts) => {
    const { client } = daemonFor(opts)
    const wishes = (await client.call('listWishes', {})).wishes.map(wishJson)
    emit(opts.json, { wishes }, () =>
      wishes.length === 0
        ? 'no wishes; add one with `peer wish add "<query>"`'
        : wishes
            .map((w) => {
              const head = `${w.id}  "${w.query}"${w.get ? ' --get' : ''}  last run ${w.lastRunAt ?? 'never'}${w.lastError ? ` (${w.lastError})` : ''}`
              if (w.matches.length === 0) return `${head}\n  no matches yet`
              const rows = w.matches.map((m) => [
                m.path ? `${m.path}/${m.name}` : m.name,
                formatBytes(m.size),
                m.foundAt,
                m.fetch ?? '',
              ])
              return `${head}\n${table(['MATCH', 'SIZE', 'FOUND', 'FETCH'], rows).replace(/^/gm, '  ')}`
            })
            .join('\n'),
    )
  })

const removeCommand = daemonCommand('remove', 'forget a saved search')
  .argument('<id>', 'the wish’s id, as `peer wish list` shows it')
  .action(async (id: string, opts) => {
    const { client } = daemonFor(opts)
    await client.call('removeWish', { id })
  })

export const wishCommand = new Command('wish')
  .description('saved searches the daemon re-runs by itself (and, with --get, fetches from)')
  .addCommand(addCommand)
  .addCommand(listCommand)
  .addCommand(removeCommand)
  .addHelpText(
    'after',
    '\nExamples:\n  peer wish add "nightjar harrow" --get --min-size 1M\n  peer wish list --json\n  peer wish remove 3fa2c1d0',
  )
