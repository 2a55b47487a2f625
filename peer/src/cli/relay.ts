import { Command, InvalidArgumentError, Option } from 'commander'
import { RELAY_DEFAULTS } from '../relay/defaults.ts'
import { wholeNumber } from './common.ts'
import { CliError, EXIT } from './errors.ts'
import { byteSize } from './start.ts'

export const relayCommand = new Command('relay')
  .description(
    'run a relay in the foreground: peers that nobody can dial register here and are reached through it',
  )
  .option(
    '--port <port>',
    'port for peers and their callers; 0: one the system picks, named in the ready line',
    wholeNumber(0, 65535),
    7000,
  )
  .option('--host <host>', 'address to listen on (a public one: that is the point)', '0.0.0.0')
  .option(
    '--directory <url>',
    'the directory whose tokens peers register with',
    process.env.PEERDIR_DIRECTORY ?? 'http://127.0.0.1:8787',
  )
  .option(
    '--public-url <url>',
    'the URL peers dial this relay at (and so the relay tokens it takes), when not the address it listens on',
    publicUrl,
  )
  .option(
    '--max-peers <n>',
    'most peers registered at once (a quarter kept for peers registered here before)',
    wholeNumber(1, 1_000_000),
    RELAY_DEFAULTS.maxPeers,
  )
  .option(
    '--max-peers-per-address <n>',
    'most peers registered at once from one address (IPv4) or /64 (IPv6)',
    wholeNumber(1, 1_000_000),
    RELAY_DEFAULTS.maxPeersPerAddress,
  )
  .option(
    '--max-streams-per-peer <n>',
    'most calls forwarded to one peer at once (a caller at most a quarter, and fewer when others wait)',
    wholeNumber(1, 256),
    RELAY_DEFAULTS.maxStreamsPerPeer,
  )
  .addOption(
    new Option('--max-peer-rate <bytes/s>', 'cap on bytes per second through one peer, both ways (0: none)')
      .argParser(byteSize)
      .default(100 * 1024 ** 2, '100M'),
  )
  .addOption(
    new Option(
      '--max-buffer <bytes>',
      'most bytes buffered for all forwarded calls together (windows shrink as calls grow)',
    )
      .argParser(byteSize)
      .default(RELAY_DEFAULTS.maxBufferBytes, '256M'),
  )
  .addOption(
    new Option(
      '--min-call-rate <bytes/s>',
      'a forwarded call moving less than this over 20 s is cut (0: only one moving nothing)',
    )
      .argParser(byteSize)
      .default(RELAY_DEFAULTS.minCallRate, '8K'),
  )
  .option(
    '--link-ping <seconds>',
    'ping each link this often; one unanswered that long drops it',
    wholeNumber(1, 3600),
    RELAY_DEFAULTS.linkPingMs / 1000,
  )
  .option('--tls-cert <file>', 'serve TLS with this certificate (PEM); peers then use --relay https://…')
  .option('--tls-key <file>', 'the TLS private key (PEM)')
  .addHelpText(
    'after',
    '\nExample:\n  peer relay --port 7000 --directory http://203.0.113.5:8787\n  peer start --name alice --relay http://203.0.113.5:7000',
  )
  .action(async (opts) => {
    if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) {
      throw new CliError('--tls-cert and --tls-key go together', EXIT.usage)
    }
    if (opts.maxBuffer < 1024 ** 2) throw new CliError('--max-buffer must be at least 1M', EXIT.usage)
    const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`)
    process.on('unhandledRejection', (reason) =>
      log(`unexpected: ${reason instanceof Error ? reason.message : reason}`),
    )
    const { startRelay } = await import('../relay/relay-server.ts')
    const relay = await startRelay({
      port: opts.port,
      host: opts.host,
      directoryUrl: opts.directory,
      publicUrl: opts.publicUrl,
      maxPeers: opts.maxPeers,
      maxPeersPerAddress: opts.maxPeersPerAddress,
      maxStreamsPerPeer: opts.maxStreamsPerPeer,
      peerRate: opts.maxPeerRate || undefined,
      maxBufferBytes: opts.maxBuffer,
      minCallRate: opts.minCallRate,
      linkPingMs: opts.linkPing * 1000,
      tls: opts.tlsCert ? { certPath: opts.tlsCert, keyPath: opts.tlsKey } : undefined,
      log,
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        throw new CliError(`port ${opts.port} is in use; pick another with --port`)
      if (err.code === 'ENOENT') throw new CliError(`cannot read ${err.path}`, EXIT.usage)
      throw err
    })
    await new Promise<void>(() => {
      const stop = async (signal: string) => {
        log(`${signal}: stopping`)
        await relay.stop()
        process.exit(0)
      }
      process.once('SIGINT', () => void stop('SIGINT'))
      process.once('SIGTERM', () => void stop('SIGTERM'))
    })
  })

function publicUrl(value: string): string {
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch {}
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search) {
    throw new InvalidArgumentError(
      'must be an http:// or https:// URL with host and port, e.g. http://203.0.113.5:7000',
    )
  }
  return url.origin
}
