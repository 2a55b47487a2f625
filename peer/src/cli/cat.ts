import { once } from 'node:events'
import { daemonCommand, daemonFor } from './common.ts'
import { CliError } from './errors.ts'

/**
 * `peer cat`: the content's bytes on stdout, in order, each chunk as soon as it is verified, while the
 * daemon's swarm download runs (the same transfer as a `peer get` of it). Two calls to the daemon: the
 * Get stream, which finds the content, holds the transfer and ends with its outcome (and so the exit
 * code), and a read of the bytes from the daemon's gateway on its control socket. Nothing but file
 * bytes goes to stdout.
 */
export const catCommand = daemonCommand(
  'cat',
  'write a file’s bytes to stdout as they arrive, verified (while the download runs)',
)
  .argument('<name-or-sha256>', 'a content hash, or a file name from `peer search`')
  .option('--no-keep', 'stop the download when reading stops, and do not keep the file in the shared folder')
  .addHelpText(
    'after',
    '\nExamples:\n  peer cat film.mp4 | mpv -\n  peer cat 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b | sha256sum\n\nThe whole file is checked against its sha256 at the end: a false one ends `peer cat` with exit 3\nafter its bytes were written. A reader that stops early (`| head -c 1M`) ends it with exit 0.',
  )
  .action(async (target: string, opts: { keep: boolean; port?: string }) => {
    const daemon = daemonFor(opts)
    // The reader left (`| head`): nothing is wrong; the daemon sees the calls close.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') process.stderr.write(`peer: cannot write to stdout: ${err.message}\n`)
      process.exit(err.code === 'EPIPE' ? 0 : 1)
    })
    const updates = daemon.client.stream('get', { target, outDir: '', noKeep: !opts.keep })
    const first = await updates.next()
    if (first.done) throw new CliError('the daemon ended the download without a result')
    const size = Number(first.value.size)
    let finished = first.value.finished
    // Settled into a value at once: a failure while stdout is still being written must not go unhandled.
    const outcome = (async () => {
      for await (const update of updates) finished ||= update.finished
    })().then(
      () => undefined,
      (err: unknown) => ({ err }),
    )
    let written = 0
    let cut: unknown
    try {
      const body = await daemon.client.content(first.value.sha256, { keep: opts.keep })
      for await (const data of body as AsyncIterable<Buffer>) {
        written += data.length
        if (!process.stdout.write(data)) await once(process.stdout, 'drain')
      }
    } catch (err) {
      cut = err
    }
    // The download's own failure says more than the cut-short read it caused.
    const failed = await outcome
    if (failed) throw failed.err
    if (cut) throw cut
    if (!finished || written !== size) {
      throw new CliError(
        `the bytes ended after ${written} of ${size}; run it again (verified chunks are kept)`,
      )
    }
  })
