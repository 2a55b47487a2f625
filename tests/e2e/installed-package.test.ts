import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type DirectoryProcess,
  nodeBin,
  repoRoot,
  startDirectoryProcess,
} from '../support/directory-process.ts'
import {
  type PeerCommand,
  type PeerProcess,
  runCli,
  startPeer,
  testStateRoot,
} from '../support/peer-process.ts'

/**
 * What a user on another machine gets: the tarball `npm pack` makes, installed with `npm install -g
 * --prefix` (its dependencies from the npm registry), its bins started through their own shebangs from a
 * folder that is not the checkout, with only that Node first on PATH: the pinned Node 24 and Node 22.12,
 * the oldest `engines` allows (installed from the registry's `node` package).
 */
const work = mkdtempSync(join(tmpdir(), 'peerdir-installed-'))
const npm = (args: string[], cwd = work, env: Record<string, string> = {}) =>
  execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, stdio: 'pipe' })
const content = randomBytes(3 * 1024 * 1024 + 17)
const contentSha = createHash('sha256').update(content).digest('hex')
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string })
  .version

let tarball = ''
let packedPaths: string[] = []
beforeAll(() => {
  const [packed] = JSON.parse(
    npm(['pack', repoRoot, '--json', '--ignore-scripts', '--pack-destination', work]),
  ) as {
    filename: string
    files: { path: string }[]
  }[]
  if (!packed) throw new Error('npm pack made nothing')
  tarball = join(work, packed.filename)
  packedPaths = packed.files.map((f) => f.path)
}, 120_000)

describe('the packed tarball', () => {
  it('holds what runs and nothing else', () => {
    expect(packedPaths.filter((path) => !/^(dist\/.+\.js|proto\/.+\.proto)$/.test(path)).sort()).toEqual([
      'LICENSE',
      'README.md',
      'package.json',
    ])
    expect(packedPaths).toContain('dist/peer.js')
    expect(packedPaths).toContain('dist/peerdir-directory.js')
  })
})

/** A folder whose only entry is `node`, to put first on PATH: the bins' shebangs find that Node. */
function pathWithNode(nodeBinary: string): string {
  const dir = mkdtempSync(join(work, 'node-on-path-'))
  symlinkSync(nodeBinary, join(dir, 'node'))
  return `${dir}:${process.env.PATH ?? ''}`
}

const nodes: [string, () => string][] = [
  ['24 (the pinned devDependency)', () => nodeBin],
  [
    '22.12 (the oldest engines allows)',
    () => {
      const prefix = join(work, 'node-22.12')
      npm(['install', '--prefix', prefix, 'node@22.12.0', '--no-audit', '--no-fund'])
      return join(prefix, 'node_modules/.bin/node')
    },
  ],
]

describe.each(nodes)('installed with npm install -g on Node %s', (label, installNode) => {
  const slug = label.split(' ')[0]
  let PATH = ''
  let prefix = ''
  let userDir = ''
  let installedPeer: PeerCommand
  let directory: DirectoryProcess | undefined
  const peers: PeerProcess[] = []

  beforeAll(() => {
    PATH = pathWithNode(installNode())
    prefix = join(work, `prefix-${slug}`)
    npm(['install', '-g', '--prefix', prefix, tarball, '--no-audit', '--no-fund'], work, { PATH })
    userDir = join(work, `user-${slug}`)
    mkdirSync(userDir)
    installedPeer = { command: [join(prefix, 'bin/peer')], cwd: userDir }
  }, 180_000)
  afterAll(async () => {
    await Promise.all([...peers.map((p) => p.stop('SIGKILL')), directory?.stop('SIGKILL')])
  })

  it('runs the directory with its dashboard and API docs, two peers, a verified get and a peer cat piped to sha256sum', async () => {
    const expected = execFileSync(join(prefix, 'bin/peer'), ['--version'], {
      cwd: userDir,
      env: { ...process.env, PATH },
      encoding: 'utf8',
    })
    expect(expected.trim()).toBe(version)
    const nodeVersion = execFileSync('node', ['--version'], {
      env: { ...process.env, PATH },
      encoding: 'utf8',
    })
    expect(nodeVersion).toMatch(slug === '24' ? /^v24\./ : /^v22\.12\./)

    directory = await startDirectoryProcess({
      command: [join(prefix, 'bin/peerdir-directory')],
      cwd: userDir,
      dbUrl: `file:${join(userDir, 'directory.db')}`,
      env: { PATH },
    })
    for (const page of ['/', '/docs']) {
      const response = await fetch(`${directory.url}${page}`)
      expect(response.status, `${page}: ${directory.output()}`).toBe(200)
      expect(await response.text()).toMatch(/<html/i)
    }
    const stateRoot = testStateRoot()
    const common = { directoryUrl: directory.url, stateRoot, env: { PATH }, peer: installedPeer }
    const holder = await startPeer({ ...common, name: `holder-${slug}` })
    peers.push(holder)
    writeFileSync(join(holder.dir, 'lecture.mkv'), content)
    await holder.waitFor(/published changes: \+1/)
    const fetcher = await startPeer({ ...common, name: `fetcher-${slug}` })
    peers.push(fetcher)

    const got = await fetcher.cli(['get', contentSha, '--json'])
    expect(got.code, got.stderr + fetcher.output()).toBe(0)
    expect(JSON.parse(got.stdout).bytesPerSource).toEqual({ [holder.name]: content.length })
    expect(readFileSync(join(fetcher.dir, 'lecture.mkv')).equals(content)).toBe(true)
    const status = await runCli(
      ['status', '--json', '--port', String(fetcher.port)],
      {
        PATH,
        PEERDIR_STATE_DIR: stateRoot,
      },
      installedPeer,
    )
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ username: fetcher.name, state: 'up', files: 1 })

    // `peer cat` of the installed bin, piped as a user would; --no-keep leaves nothing in the folder.
    const viewer = await startPeer({ ...common, name: `viewer-${slug}` })
    peers.push(viewer)
    const piped = execFileSync(
      'bash',
      [
        '-o',
        'pipefail',
        '-c',
        `"$0" cat lecture.mkv --no-keep --port ${viewer.port} | sha256sum`,
        join(prefix, 'bin/peer'),
      ],
      { cwd: userDir, env: { ...process.env, PATH, PEERDIR_STATE_DIR: stateRoot }, encoding: 'utf8' },
    )
    expect(piped.split(' ')[0]).toBe(contentSha)
    expect(existsSync(join(viewer.dir, 'lecture.mkv'))).toBe(false)
  }, 120_000)
})
