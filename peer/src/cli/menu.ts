import { daemonCommand } from './common.ts'
import { connectDaemon, DEFAULT_PORT, portFrom } from './daemon-client.ts'
import { toCliError } from './errors.ts'
import { formatBytes, ProgressBar, table } from './format.ts'
import { runGet } from './get.ts'
import { printable } from './output.ts'
import { lineReader } from './prompt.ts'

/** The original Napster-style menu over a running daemon. */
export const menuCommand = daemonCommand(
  'menu',
  'the interactive menu: 1 Login, 2 Logout, 3 Index files, 4 Search (and download), 5 Wish',
)
  .addHelpText('after', `\nExample:\n  peer menu --port ${DEFAULT_PORT}`)
  .action(async (opts) => {
    const port = portFrom(opts.port)
    const daemon = connectDaemon(port)
    const { client } = daemon
    const input = await lineReader()
    // The end of the input (a script's pipe, or Ctrl-D) is an empty answer, which leads back out.
    const ask = async (question: string) => ((await input.ask(question)) ?? '').trim()
    try {
      await menuLoop()
    } finally {
      input.close()
    }
    async function menuLoop() {
      for (;;) {
        process.stdout.write(
          '\npeerdir\n  1) Login\n  2) Logout\n  3) Index files\n  4) Search files\n  5) Wish for files\n  0) Quit\n',
        )
        const choice = await ask('> ')
        try {
          if (choice === '0' || choice === 'q' || choice === '') return
          if (choice === '1') {
            await client.call('login', {})
            console.log('Logged in.')
          } else if (choice === '2') {
            await client.call('logout', {})
            console.log('Logged out.')
          } else if (choice === '3') {
            const r = await client.call('reindex', {})
            console.log(`Indexed ${r.files} files (${r.added} new, ${r.removed} gone).`)
          } else if (choice === '4') {
            const query = await ask('Search for: ')
            if (!query) continue
            const { results } = await client.call('search', { query, limit: 20 })
            if (results.length === 0) {
              console.log('Nothing found.')
              continue
            }
            console.log(
              printable(
                table(
                  ['#', 'NAME', 'SIZE', 'HASH', 'SOURCES', 'FOLDER'],
                  results.map((r, i) => [
                    String(i + 1),
                    r.name,
                    formatBytes(Number(r.size)),
                    r.sha256.slice(0, 12),
                    String(r.sourceCount),
                    r.path,
                  ]),
                ),
              ),
            )
            const pick = await ask('Download which # (Enter for none): ')
            const chosen = results[Number(pick) - 1]
            if (!pick || !chosen) continue
            const bar = process.stdout.isTTY ? new ProgressBar(process.stdout) : undefined
            const done = await runGet(daemon, chosen.sha256, '', bar)
            console.log(`Saved ${done.name} to ${done.path} (verified).`)
          } else if (choice === '5') {
            const query = await ask('Wish for (searched again about every minute): ')
            if (!query) continue
            const get = /^y/i.test(await ask('Fetch each new match? (y/N): '))
            const { wish } = await client.call('addWish', { query, get, minSize: '0', maxSize: '0' })
            console.log(
              `Wish ${wish.id} saved${get ? ': new matches are fetched into the shared folder' : ''}.`,
            )
          } else {
            console.log('Choose 1, 2, 3, 4, 5 or 0.')
          }
        } catch (err) {
          console.log(`Error: ${toCliError(err, port).message}`)
        }
      }
    }
  })
