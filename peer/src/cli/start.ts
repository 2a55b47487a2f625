import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Command, InvalidArgumentError, Option } from 'commander'
import { wholeNumber } from './common.ts'
import { DEFAULT_PORT } from './daemon-client.ts'
import { CliError, EXIT } from './errors.ts'
import { readHiddenLine } from './prompt.ts'

/** Rates and sizes as plain bytes or with a unit: 10M, 512K, 1G (powers of 1024). */
export const byteSize = (value: string) => {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(value.trim())
  if (!match) throw new InvalidArgumentError('must be a size like 1048576, 512K, 10M or 1G')
  const power = ' KMGT'.indexOf((match[2] || ' ').toUpperCase())
  return Math.round(Number(match[1]) * 1024 ** power)
}

/** Room for a few uploads of the largest size accepted by default (4 GiB). */
const DEFAULT_INBOX_QUOTA = 16 * 1024 ** 3

async function password(file: string | undefined): Promise<string> {
  if (file) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '')
    } catch {
      throw new CliError(`cannot read the password file ${file}`, EXIT.usage)
    }
  }
  if (process.env.PEER_PASSWORD) return process.env.PEER_PASSWORD
  if (process.stdin.isTTY) return readHiddenLine('Password: ')
  throw new CliError('no password: give --password-file, set PEER_PASSWORD, or run on a terminal', EXIT.usage)
}

function relayUrlOption(value: string): string {
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch {}
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search) {
    throw new CliError(
      '--relay must be a relay’s http:// or https:// URL (host, and port unless the default), e.g. http://203.0.113.5:7000',
      EXIT.usage,
    )
  }
  return url.origin
}

const usernames = (value: string) => {
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean)
  const bad = names.find((name) => !/^[A-Za-z0-9._-]{1,64}$/.test(name))
  if (bad !== undefined) throw new InvalidArgumentError(`"${bad}" is not a username`)
  return names
}

function wishInterval(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = Number(value)
  if (!Number.isInteger(ms) || ms < 50)
    throw new CliError('PEERDIR_WISH_INTERVAL_MS must be at least 50', EXIT.usage)
  return ms
}

function stallTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = Number(value)
  if (!Number.isInteger(ms) || ms < 1000)
    throw new CliError('PEERDIR_STALL_MS must be at least 1000', EXIT.usage)
  return ms
}

export const startCommand = new Command('start')
  .description('run the peer daemon in the foreground: share a folder, stay in the directory, serve peers')
  .requiredOption('--name <username>', 'your username in the directory')
  .option(
    '--port <port>',
    'port for peers (and this machine’s CLI); 0: one the system picks, named in the ready line',
    wholeNumber(0, 65535),
    DEFAULT_PORT,
  )
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--dir <folder>', 'the folder to share', './share')
  .option(
    '--directory <url>',
    'the directory’s URL',
    process.env.PEERDIR_DIRECTORY ?? 'http://127.0.0.1:8787',
  )
  .option(
    '--public-url <url>',
    'the URL other peers reach this one at (default: https://<host>:<port>; http:// with --plaintext)',
  )
  .option('--relay <url>', 'be reached through this relay (`peer relay`) when nobody can dial this machine')
  .option('--password-file <file>', 'read the password from this file (else PEER_PASSWORD, else a prompt)')
  .option('--open', 'serve callers without a directory token', false)
  .option('--accept-uploads', 'accept `peer push` uploads into <dir>/inbox/', false)
  .option('--max-upload-size <bytes>', 'largest upload accepted', byteSize, 4 * 1024 ** 3)
  .addOption(
    new Option(
      '--inbox-quota <bytes>',
      'most bytes <dir>/inbox/ holds; a `peer push` that would pass it is refused',
    )
      .argParser(byteSize)
      .default(DEFAULT_INBOX_QUOTA, '16GiB'),
  )
  .option('--max-upload-rate <bytes/s>', 'cap on bytes per second served to all peers (e.g. 10M)', byteSize)
  .option(
    '--upload-slots <n>',
    'downloaders (accounts) served at once; the others wait in a queue, told their place',
    wholeNumber(1, 10_000),
    8,
  )
  .option(
    '--max-queue <n>',
    'downloaders that may wait for a slot; beyond, refused',
    wholeNumber(0, 100_000),
    256,
  )
  .option('--friends <usernames>', 'comma-separated usernames that skip the upload queue', usernames, [])
  .option(
    '--tls-cert <file>',
    'serve TLS with this (CA-issued) certificate instead of the daemon’s own; its key is then the one listed',
  )
  .option('--tls-key <file>', 'the TLS private key (PEM)')
  .option(
    '--plaintext',
    'serve peers without TLS (a trusted network only: file bytes and call tokens cross it in clear)',
    false,
  )
  .option(
    '--on-complete <command>',
    'run this shell command after each verified download, with PEERDIR_PATH, PEERDIR_NAME, PEERDIR_SHA256 and PEERDIR_SIZE in its environment',
  )
  .addHelpText(
    'after',
    `\nExample:\n  peer start --name alice --dir ./share --port ${DEFAULT_PORT} --directory http://127.0.0.1:8787`,
  )
  .action(async (opts) => {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(opts.name)) {
      throw new CliError('--name must be 1-64 characters of A-Z a-z 0-9 . _ -', EXIT.usage)
    }
    if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) {
      throw new CliError('--tls-cert and --tls-key go together', EXIT.usage)
    }
    if (opts.plaintext && opts.tlsCert) {
      throw new CliError('--plaintext serves no TLS: leave out --tls-cert and --tls-key', EXIT.usage)
    }
    const scheme = opts.plaintext ? 'http:' : 'https:'
    if (opts.publicUrl !== undefined && !String(opts.publicUrl).startsWith(scheme)) {
      throw new CliError(
        opts.plaintext
          ? '--public-url must be http:// with --plaintext'
          : '--public-url must be https:// (this port serves TLS; --plaintext opts out)',
        EXIT.usage,
      )
    }
    const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`)
    // A long-running daemon logs a stray failure instead of dying with its transfers and lease.
    process.on('unhandledRejection', (reason) =>
      log(`unexpected: ${reason instanceof Error ? reason.message : reason}`),
    )
    // The daemon stack loads only here: every other command is a small client of a running daemon.
    const { startDaemon } = await import('../daemon/daemon.ts')
    const { webApp } = await import('../ui/web-app.ts')
    const daemon = await startDaemon({
      port: opts.port,
      host: opts.host,
      username: opts.name,
      password: await password(opts.passwordFile),
      sharedDir: resolve(opts.dir),
      directoryUrl: opts.directory,
      publicUrl: opts.publicUrl,
      relayUrl: opts.relay === undefined ? undefined : relayUrlOption(opts.relay),
      open: opts.open,
      acceptUploads: opts.acceptUploads,
      maxUploadBytes: opts.maxUploadSize,
      inboxQuotaBytes: opts.inboxQuota,
      maxUploadRate: opts.maxUploadRate,
      uploadSlots: opts.uploadSlots,
      maxQueue: opts.maxQueue,
      friends: opts.friends,
      tls: opts.tlsCert ? { certPath: opts.tlsCert, keyPath: opts.tlsKey } : undefined,
      plaintext: opts.plaintext,
      onComplete: opts.onComplete,
      // Tests run wishes every few hundred milliseconds instead of about every minute.
      wishIntervalMs: wishInterval(process.env.PEERDIR_WISH_INTERVAL_MS),
      webApp,
      // Tests give a silent source a few seconds instead of 20.
      stallMs: stallTime(process.env.PEERDIR_STALL_MS),
      log,
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        throw new CliError(`port ${opts.port} is in use; pick another with --port`)
      throw err
    })
    await new Promise<void>((resolveStop) => {
      const stop = async (signal: string) => {
        log(`${signal}: logging out and stopping`)
        await daemon.stop()
        resolveStop()
        // Peers' open HTTP/2 sessions would keep the process alive; everything worth saving is saved.
        process.exit(0)
      }
      process.once('SIGINT', () => void stop('SIGINT'))
      process.once('SIGTERM', () => void stop('SIGTERM'))
    })
  })
