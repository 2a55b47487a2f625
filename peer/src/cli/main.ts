import { Command, CommanderError } from 'commander'
import { VERSION } from '../version.ts'
import { browseCommand } from './browse.ts'
import { catCommand } from './cat.ts'
import { DEFAULT_PORT } from './daemon-client.ts'
import { EXIT, toCliError } from './errors.ts'
import { eventsCommand } from './events.ts'
import { getCommand } from './get.ts'
import { filesCommand, peersCommand, searchCommand, statusCommand } from './listing-commands.ts'
import { menuCommand } from './menu.ts'
import { printable } from './output.ts'
import { pushCommand } from './push.ts'
import { relayCommand } from './relay.ts'
import { indexCommand, loginCommand, logoutCommand } from './session-commands.ts'
import { startCommand } from './start.ts'
import { uiCommand } from './ui.ts'
import { urlCommand } from './url.ts'
import { wishCommand } from './wish.ts'

/**
 * Commander's usage errors as one line: `error: unknown command 'x'` and its `(Did you mean y?)` become
 * `peer: unknown command 'x' (did you mean y?); run \`peer --help\` for usage`.
 */
const oneLineErrors = {
  outputError: (text: string, write: (line: string) => void) => {
    const [first = '', ...rest] = text
      .trim()
      .replace(/^error: /, '')
      .split('\n')
    const hint = rest.map((line) => line.replace(/^\((.*)\)$/, '$1').replace(/^Did/, 'did')).join('; ')
    write(`peer: ${printable(first)}${hint ? ` (${printable(hint)})` : ''}; run \`peer --help\` for usage\n`)
  },
}

export function buildProgram() {
  const program = new Command('peer')
    .description('peerdir peer: share a folder, find and fetch files from every live source, verified')
    .version(VERSION)
    .configureOutput(oneLineErrors)
    .exitOverride()
  for (const command of [
    startCommand,
    loginCommand,
    logoutCommand,
    indexCommand,
    searchCommand,
    browseCommand,
    getCommand,
    catCommand,
    urlCommand,
    uiCommand,
    pushCommand,
    wishCommand,
    eventsCommand,
    statusCommand,
    filesCommand,
    peersCommand,
    menuCommand,
    relayCommand,
  ]) {
    program.addCommand(command.configureOutput(oneLineErrors).exitOverride())
  }
  return program
}

/** Runs the CLI; every failure is one line on stderr and an exit code of EXIT, never a stack trace. */
export async function main(argv: string[]) {
  const program = buildProgram()
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage
      return
    }
    const portArg = argv.indexOf('--port')
    const port = Number(portArg >= 0 ? argv[portArg + 1] : (process.env.PEER_PORT ?? DEFAULT_PORT))
    const failure = toCliError(err, port)
    // A script that asked for JSON gets a JSON document on stdout even when the command failed.
    if (argv.includes('--json')) {
      process.stdout.write(
        `${JSON.stringify({ error: { message: failure.message, exitCode: failure.exitCode } })}\n`,
      )
    }
    process.stderr.write(`peer: ${printable(failure.message)}\n`)
    process.exitCode = failure.exitCode
  }
}
