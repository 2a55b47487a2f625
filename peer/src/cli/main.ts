import { Command, CommanderError } from 'commander'
import { VERSION } from '../version.ts'
import { EXIT, toCliError } from './errors.ts'
import { getCommand } from './get.ts'
import { filesCommand, peersCommand, searchCommand, statusCommand } from './listing-commands.ts'
import { menuCommand } from './menu.ts'
import { pushCommand } from './push.ts'
import { indexCommand, loginCommand, logoutCommand } from './session-commands.ts'
import { startCommand } from './start.ts'

export function buildProgram() {
  const program = new Command('peer')
    .description('peerdir peer: share a folder, find and fetch files from every live source, verified')
    .version(VERSION)
    .showHelpAfterError('(run `peer --help` for usage)')
    .exitOverride()
  for (const command of [
    startCommand,
    loginCommand,
    logoutCommand,
    indexCommand,
    searchCommand,
    getCommand,
    pushCommand,
    statusCommand,
    filesCommand,
    peersCommand,
    menuCommand,
  ]) {
    program.addCommand(command.exitOverride())
  }
  return program
}

/** Runs the CLI; every failure is one line on stderr and a SPEC exit code, never a stack trace. */
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
    const port = Number(portArg >= 0 ? argv[portArg + 1] : (process.env.PEER_PORT ?? 50051))
    const failure = toCliError(err, port)
    process.stderr.write(`peer: ${failure.message}\n`)
    process.exitCode = failure.exitCode
  }
}
