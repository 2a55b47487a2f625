import { spawn } from 'node:child_process'
import { daemonCommand, daemonFor } from './common.ts'

/** The program that opens a URL in the user's browser here, or undefined where none can show one. */
function opener(): { command: string; args: string[] } | undefined {
  if (process.platform === 'darwin') return { command: 'open', args: [] }
  if (process.platform === 'win32') return { command: 'cmd', args: ['/c', 'start', '""'] }
  // Over SSH or on a console there is no display to open a browser on.
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return undefined
  return { command: 'xdg-open', args: [] }
}

/** Opens `url` with the platform's opener; false if it could not be started or failed. */
function openInBrowser(url: string): Promise<boolean> {
  const how = opener()
  if (!how) return Promise.resolve(false)
  return new Promise((resolve) => {
    const child = spawn(how.command, [...how.args, url], { stdio: 'ignore' })
    child.once('error', () => resolve(false))
    child.once('exit', (code) => resolve(code === 0))
  })
}

/**
 * `peer ui`: the daemon's web app in the browser. The daemon makes a one-time URL (single use, 60 s)
 * that sets the app's cookie; this opens it, or prints it with `--print` or where no browser opens.
 */
export const uiCommand = daemonCommand(
  'ui',
  'open the peer’s web app in the browser (or print its one-time URL)',
)
  .option('--print', 'print the one-time URL instead of opening a browser')
  .action(async (opts: { print?: boolean; port?: string }) => {
    const { client } = daemonFor(opts)
    const { url, expiresInSeconds } = await client.call('appUrl', {})
    if (!opts.print && (await openInBrowser(url))) {
      console.error(`opened the web app in your browser`)
      return
    }
    console.log(url)
    console.error(`open this URL in a browser on this machine within ${expiresInSeconds} s; it works once`)
  })
