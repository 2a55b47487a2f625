import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { startNodeDirectory } from './node.ts'
import { CliError, usersCommand } from './users-command.ts'

const port = (value: string) => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number 0-65535')
  return n
}

async function serve(options: { host: string; port: number; db: string }) {
  const directory = await startNodeDirectory({
    host: options.host,
    port: options.port,
    databaseUrl: options.db,
  })
  console.log(`peerdir directory listening on ${directory.url} (database ${options.db})`)
  const stop = async (signal: string) => {
    console.log(`${signal}: shutting down`)
    await directory.close()
    process.exit(0)
  }
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}

/** `peerdir-directory`: the directory on Node. Flags win over env vars; env vars over defaults. */
export async function main(argv: string[]) {
  const program = new Command('peerdir-directory')
    .description('Run the peerdir directory on Node with an embedded libSQL database.')
    .option('--host <host>', 'address to listen on', process.env.HOST ?? '127.0.0.1')
    .option('--port <port>', 'port to listen on', port, process.env.PORT ? port(process.env.PORT) : 8787)
    .option('--db <url>', 'libSQL database URL', process.env.DATABASE_URL ?? 'file:data/directory.db')
    .enablePositionalOptions()
    .addHelpText(
      'after',
      '\nEnvironment: LEASE_SECONDS (60), TOKEN_TTL_SECONDS (900), READ_REQUIRES_AUTH (false),\n' +
        'REGISTRATION (open; closed when reads require auth), LOGIN_MAX_FAILURES (5),\n' +
        'LOGIN_MAX_FAILURES_PER_NAME (10 x LOGIN_MAX_FAILURES), LOGIN_LOCK_SECONDS (60), TRUST_PROXY (false),\n' +
        'ADMIN_TOKEN, METRICS_TOKEN, DATABASE_URL.\n' +
        'Examples: peerdir-directory --port 8787 --db file:data/directory.db\n' +
        '          printf %s "$PASSWORD" | peerdir-directory users add alice --password-stdin',
    )
    .showHelpAfterError()
    .exitOverride()
    .action(serve)
    .addCommand(usersCommand)
  for (const command of usersCommand.commands) command.exitOverride().showHelpAfterError()
  usersCommand.exitOverride()
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2)
    console.error(`peerdir-directory: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(err instanceof CliError ? err.exitCode : 1)
  }
}
