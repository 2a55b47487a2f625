import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { Miniflare } from 'miniflare'
import { unstable_getMiniflareWorkerOptions } from 'wrangler'
import { repoRoot } from './directory-process.ts'
import { ownDisposal } from './owned-processes.ts'

export type WorkerdDirectory = { url: string; output: () => string; stop: () => Promise<void> }

/** The one module `wrangler deploy` would upload: its path and its code. */
type WorkerBundle = { path: string; contents: string }

/** Bundles by the temporary folder they are in: each test file has its own, removed after it. */
const built = new Map<string, Promise<WorkerBundle>>()

/** The Workers bundle exactly as `wrangler deploy` would upload it, built once per test file. */
function bundle(): Promise<WorkerBundle> {
  const folder = tmpdir()
  let made = built.get(folder)
  if (!made) {
    made = buildInto(mkdtempSync(join(folder, 'peerdir-worker-bundle-')))
    built.set(folder, made)
  }
  return made
}

async function buildInto(outdir: string): Promise<WorkerBundle> {
  await promisify(execFile)(
    join(repoRoot, 'node_modules/.bin/wrangler'),
    ['deploy', '--dry-run', '--outdir', outdir],
    { cwd: repoRoot, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' } },
  )
  // Handed to Miniflare as its one module, so Miniflare does not parse 1.4 MB of JavaScript again at
  // every start to find imports that esbuild has already inlined (a third of a CPU-second a start).
  const others = readdirSync(outdir).filter((name) => name !== 'worker.js' && !/\.(map|md)$/.test(name))
  if (others.length > 0)
    throw new Error(`the Workers bundle has modules besides worker.js: ${others.join(', ')}`)
  const path = join(outdir, 'worker.js')
  return { path, contents: readFileSync(path, 'utf8') }
}

/** wrangler.toml as Miniflare options, read once per worker: the same for every directory. */
let fromWranglerToml: ReturnType<typeof unstable_getMiniflareWorkerOptions>['workerOptions'] | undefined

/**
 * The directory's Workers build in real workerd with its local D1 and Durable Objects, run by Miniflare,
 * the engine inside `wrangler dev`, with the bindings wrangler itself reads from wrangler.toml and these
 * vars on top. Miniflare's entry sets CF-Connecting-IP from the socket (when the client sent none) as
 * `wrangler dev` does. A start is one workerd, where `wrangler dev` is wrangler, esbuild and two
 * workerds: the D1 API suite, 13 directories, took 84 CPU-s with `wrangler dev` and 31 with this. The
 * suites of `wrangler dev` itself use tests/support/wrangler-dev.ts. package.json pins wrangler, and
 * miniflare to the version that wrangler pins, so the options wrangler makes feed the Miniflare they
 * were made for.
 */
export async function startWorkerdDirectory(
  vars: Record<string, string>,
  persistTo = mkdtempSync(join(tmpdir(), 'peerdir-workerd-state-')),
): Promise<WorkerdDirectory> {
  const worker = await bundle()
  fromWranglerToml ??= unstable_getMiniflareWorkerOptions(join(repoRoot, 'wrangler.toml')).workerOptions
  const workerOptions = fromWranglerToml
  let output = ''
  const miniflare = new Miniflare({
    ...workerOptions,
    name: 'peerdir-directory',
    modules: [{ type: 'ESModule', path: worker.path, contents: worker.contents }],
    modulesRoot: dirname(worker.path),
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
  // Ended after the file whatever happens to the test (killOwned), or by stop() before.
  const stop = ownDisposal(() => miniflare.dispose())
  try {
    const url = (await miniflare.ready).origin
    return { url, output: () => output, stop }
  } catch (err) {
    await stop().catch(() => {})
    throw new Error(`workerd did not start: ${err}\n${output}`)
  }
}
