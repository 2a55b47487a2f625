import { type Client, createClient } from '@libsql/client'
import { Command, Option } from 'commander'
import { Password, Username } from '../../../contract/schemas.ts'
import { hashPassword } from '../auth/passwords.ts'
import { addAccount, listAccounts, removeAccount, toAccount } from '../store/accounts.ts'
import { migrate } from '../store/migrations.ts'
import { findPeer } from '../store/peers.ts'
import { readHiddenLine, readPasswordFromStdin } from './password-prompt.ts'

/** A failure the CLI reports as one line on stderr with this exit code (README: 1 failed, 2 usage, 3 none). */
export class CliError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.exitCode = exitCode
  }
}

const dbOption = () =>
  new Option('--db <url>', 'libSQL database URL (env DATABASE_URL)').default(
    process.env.DATABASE_URL ?? 'file:data/directory.db',
  )
const jsonOption = () => new Option('--json', 'print one JSON document on stdout')

/** The directory's database, migrated, beside a directory that may be running on it. */
async function withDatabase<T>(url: string, work: (db: Client) => Promise<T>): Promise<T> {
  const db = createClient({ url, concurrency: 1 })
  try {
    if (url.startsWith('file:')) await db.execute('PRAGMA busy_timeout = 5000')
    await migrate(db)
    return await work(db)
  } finally {
    db.close()
  }
}

const username = (value: string) => {
  const parsed = Username.safeParse(value)
  if (!parsed.success) throw new CliError(`username ${parsed.error.issues[0]?.message}`, 2)
  return parsed.data
}

async function newPassword(fromStdin: boolean): Promise<string> {
  let password: string
  if (fromStdin) password = await readPasswordFromStdin()
  else if (process.stdin.isTTY) {
    password = await readHiddenLine('Password: ')
    if ((await readHiddenLine('Again: ')) !== password) throw new CliError('The passwords differ.', 2)
  } else {
    throw new CliError('No password: pipe it in with --password-stdin, or run on a terminal to be asked.', 2)
  }
  const parsed = Password.safeParse(password)
  if (!parsed.success) throw new CliError(`password ${parsed.error.issues[0]?.message}`, 2)
  return parsed.data
}

const print = (json: boolean | undefined, result: object, human: string) =>
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : `${human}\n`)

const add = new Command('add')
  .description('make an account; its peer then logs in with this name and password')
  .argument('<username>')
  .option('--password-stdin', 'read the password from stdin (else a prompt on a terminal)')
  .addOption(dbOption())
  .addOption(jsonOption())
  .action(async (name: string, options: { passwordStdin?: boolean; db: string; json?: boolean }) => {
    const user = username(name)
    const passwordHash = await hashPassword(await newPassword(Boolean(options.passwordStdin)))
    await withDatabase(options.db, async (db) => {
      const now = Date.now()
      if (!(await addAccount(db, { username: user, passwordHash, now })))
        throw new CliError(`An account ${user} exists already; remove it first to start it afresh.`)
      const made = await findPeer(db, user)
      if (!made) throw new CliError(`The account ${user} vanished right after it was made.`)
      print(options.json, { user: toAccount(made, now) }, `Added ${user}.`)
    })
  })

const remove = new Command('remove')
  .description('remove an account: its sessions end at once and its index is dropped')
  .argument('<username>')
  .addOption(dbOption())
  .addOption(jsonOption())
  .action(async (name: string, options: { db: string; json?: boolean }) => {
    const user = username(name)
    await withDatabase(options.db, async (db) => {
      if (!(await removeAccount(db, user))) throw new CliError(`There is no account ${user}.`, 3)
      print(
        options.json,
        { username: user, removed: true },
        `Removed ${user}: its sessions ended, its index is gone.`,
      )
    })
  })

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

const list = new Command('list')
  .description('the accounts, by name')
  .addOption(dbOption())
  .addOption(jsonOption())
  .action(async (options: { db: string; json?: boolean }) => {
    await withDatabase(options.db, async (db) => {
      const result = await listAccounts(db, { now: Date.now(), limit: Number.MAX_SAFE_INTEGER, offset: 0 })
      const width = Math.max(8, ...result.users.map((u) => u.username.length))
      const lines = result.users.map(
        (u) =>
          `${u.username.padEnd(width)}  ${u.state.padEnd(4)}  ${plural(u.files, 'file').padEnd(12)}  created ${u.createdAt}`,
      )
      print(options.json, result, lines.length ? lines.join('\n') : 'No accounts.')
    })
  })

export const usersCommand = new Command('users')
  .description('make, remove and list accounts (what REGISTRATION=closed leaves to the operator)')
  .addCommand(add)
  .addCommand(remove)
  .addCommand(list)
