import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { Miniflare } from 'miniflare'
import { unstable_getMiniflareWorkerOptions } from 'wrangler'
import { repoRoot } from './directory-process.ts'

export type WorkerdDirectory = { url: string; output: () => string; stop: () => Promise<void> }

/** Bundles by the temporary folder they are in: each test file has its own, removed after it. */
const built = new Map<string, Promise<string>>()

/** The Workers bundle exactly as `wrangler deploy` would upload it, built once per test file. */
function bundle(): Promise<string> {
  const folder = tmpdir()
  let outdir = built.get(folder)
  if (!outdir) {
    outdir = buildInto(mkdtempSync(join(folder, 'peerdir-worker-bundle-')))
    built.set(folder, outdir)
  }
  return outdir
}

async function buildInto(outdir: string): Promise<string> {
  await promisify(execFile)(
    join(repoRoot, 'node_modules/.bin/wrangler'),
    ['deploy', '--dry-run', '--outdir', outdir],
    { cwd: repoRoot, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' } },
  )
  return outdir
}

/**
 * The directory's Workers build in real workerd with its local D1 and Durable Objects, run by Miniflare,
 * the engine inside `wrangler dev`, with the bindings wrangler itself reads from wrangler.toml and these
 * vars on top. Miniflare's entry sets CF-Connecting-IP from the socket as `wrangler dev` does. A start
 * costs a workerd (about 1 CPU-s) instead of `wrangler dev`'s wrangler, esbuild and two workerds (about
 * 3), which the API suites pay thirteen times each; the suites that test `wrangler dev` itself use
 * tests/support/wrangler-dev.ts.
 */
export async function startWorkerdDirectory(
  vars: Record<string, string>,
  persistTo = mkdtempSync(join(tmpdir(), 'peerdir-workerd-state-')),
): Promise<WorkerdDirectory> {
  const outdir = await bundle()
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(repoRoot, 'wrangler.toml'))
  let output = ''
  const miniflare = new Miniflare({
    ...workerOptions,
    name: 'peerdir-directory',
    modules: true,
    modulesRoot: outdir,
    scriptPath: join(outdir, 'worker.js'),
    bindings: { ...workerOptions.bindings, ...vars },
    host: '127.0.0.1',
    port: 0,
    d1Persist: join(persistTo, 'd1'),
    durableObjectsPersist: join(persistTo, 'do'),
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      stdout.on('data', (chunk: Buffer) => {
        output += chunk
      })
      stderr.on('data', (chunk: Buffer) => {
        output += chunk
      })
    },
  })
  const url = (await miniflare.ready).origin
  let stopped: Promise<void> | undefined
  return { url, output: () => output, stop: () => (stopped ??= miniflare.dispose()) }
}
