// npm run demo: a whole peerdir network on this machine, step by step, then cleaned up.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../..')
const node = process.execPath
const work = mkdtempSync(join(tmpdir(), 'peerdir-demo-'))
const env = { ...process.env, PEERDIR_STATE_DIR: join(work, 'state'), PEER_PASSWORD: 'demo-password' }
const children: ChildProcess[] = []
const bold = (text: string) => (process.stdout.isTTY ? `\u001b[1m${text}\u001b[0m` : text)
const step = (text: string) => console.log(`\n${bold(`==> ${text}`)}`)

const freePort = () =>
  new Promise<number>((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => done(typeof address === 'object' && address ? address.port : 0))
    })
  })

function background(args: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn(node, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let output = ''
  return new Promise((done, fail) => {
    const onData = (chunk: Buffer) => {
      output += chunk
      if (ready.test(output)) done(child)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => fail(new Error(`${args.join(' ')} exited ${code}:\n${output}`)))
  })
}

function peer(args: string[]): Promise<string> {
  console.log(`$ peer ${args.join(' ')}`)
  return new Promise((done, fail) => {
    execFile(node, [join(root, 'dist/peer.js'), ...args], { cwd: root, env }, (err, stdout, stderr) => {
      process.stdout.write(stdout)
      if (err) fail(new Error(stderr || err.message))
      else done(stdout)
    })
  })
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

async function main() {
  step('Starting a directory (Hono + libSQL) on loopback')
  const directoryPort = await freePort()
  const directoryUrl = `http://127.0.0.1:${directoryPort}`
  await background(
    [
      'dist/peerdir-directory.js',
      '--port',
      String(directoryPort),
      '--db',
      `file:${join(work, 'directory.db')}`,
    ],
    /listening on/,
  )
  console.log(
    `directory at ${directoryUrl} (dashboard at ${directoryUrl}/, API docs at ${directoryUrl}/docs)`,
  )

  step('Starting three peers, each sharing its own folder')
  const peers: Record<string, { port: number; dir: string }> = {}
  for (const name of ['alice', 'bob', 'carol']) {
    const dir = join(work, name)
    mkdirSync(dir, { recursive: true })
    peers[name] = { port: await freePort(), dir }
  }
  const alice = peers.alice as { port: number; dir: string }
  writeFileSync(join(alice.dir, 'holiday-video.mp4'), randomBytes(24 * 1024 * 1024))
  writeFileSync(join(alice.dir, 'recipes.txt'), 'Pancakes: flour, milk, eggs.\n')
  writeFileSync(join(peers.bob?.dir ?? '', 'mixtape.ogg'), randomBytes(3 * 1024 * 1024))
  for (const [name, { port, dir }] of Object.entries(peers)) {
    await background(
      [
        'dist/peer.js',
        'start',
        '--name',
        name,
        '--port',
        String(port),
        '--dir',
        dir,
        '--directory',
        directoryUrl,
      ],
      /published \d+ files/,
    )
    console.log(`${name}: peer on port ${port}, sharing ${dir}`)
  }
  const carol = String(peers.carol?.port)

  step('Carol searches the network')
  await peer(['search', 'video', '--port', carol])

  step('Carol downloads it: every chunk verified against the manifest, then the whole file')
  await peer(['get', 'holiday-video.mp4', '--port', carol])
  const original = sha256(join(alice.dir, 'holiday-video.mp4'))
  const copy = sha256(join(peers.carol?.dir ?? '', 'holiday-video.mp4'))
  console.log(`sha256 at alice: ${original}\nsha256 at carol: ${copy}`)
  if (original !== copy) throw new Error('the copy differs from the original')
  console.log('identical.')

  step('Carol now shares it too: the network lists two sources')
  await new Promise((r) => setTimeout(r, 1000))
  await peer(['search', 'holiday', '--port', carol])

  step('The network as the directory sees it')
  await peer(['peers', '--port', carol])
  console.log(`\n${bold('Demo done.')} Everything ran on 127.0.0.1 in ${work}; cleaning up.`)
}

async function cleanUp() {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null) return done()
          child.once('exit', () => done())
          child.kill('SIGTERM')
          setTimeout(() => child.kill('SIGKILL'), 3000).unref()
        }),
    ),
  )
  rmSync(work, { recursive: true, force: true })
}

main()
  .then(cleanUp)
  .catch(async (err) => {
    console.error(`demo failed: ${err instanceof Error ? err.message : err}`)
    await cleanUp()
    process.exit(1)
  })
