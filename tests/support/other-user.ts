import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  copyFileSync,
  cpSync,
  existsSync,
  linkSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, parse, relative } from 'node:path'
import { afterAll } from 'vitest'
import { directoryBin, nodeBin, repoRoot } from './directory-process.ts'
import type { PeerCommand } from './peer-process.ts'
import { peerBin } from './peer-process.ts'
import { mustSkip } from './requirements.ts'

/** `nobody`, through setpriv (util-linux), which only root may do. */
export const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
const nobody = 65534

export type OtherUser = {
  /** The world-readable folder holding the copy; anything `nobody` must reach goes under it. */
  root: string
  node: string
  peer: PeerCommand
  directory: PeerCommand
  /** A new folder under `root`, 0755, owned by `nobody` when `owned`. */
  folder: (prefix: string, owned?: boolean) => string
}

/** Whether a user other than the owner and group may walk down to `path` (every folder on the way `o+x`). */
function reachableByOthers(path: string): boolean {
  for (let dir = path; ; dir = dirname(dir)) {
    if (!existsSync(dir) || (statSync(dir).mode & 0o001) === 0) return false
    if (dir === parse(dir).root) return true
  }
}

/** The folder of an installed package `name` as Node resolves it from `from` (inside the checkout). */
function packageDir(name: string, from: string): string | undefined {
  for (let dir = from; dir.startsWith(repoRoot); dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name)
    if (existsSync(join(candidate, 'package.json'))) return candidate
    if (dir === repoRoot) break
  }
  return undefined
}

/** The checkout's runtime dependencies with theirs, as folders (those an optional one lacks are left out). */
function runtimeModules(): string[] {
  const found = new Set<string>()
  const visit = (from: string) => {
    const manifest = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8'))
    const names = Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })
    for (const name of names) {
      const dir = packageDir(name, from)
      if (dir === undefined || found.has(dir)) continue
      found.add(dir)
      visit(dir)
    }
  }
  visit(repoRoot)
  return [...found]
}

/**
 * A user other than the one running the tests: `nobody`, for tests of what file modes keep from another
 * local user. That user runs only what it can reach, and the checkout may sit under a folder only root
 * may enter (a fresh clone in any `mktemp -d`), so the project's Node, the built bins and the modules they
 * load are copied (Node hard-linked where it can be) into a world-readable folder, removed after the
 * file. Undefined when this machine has no such user (not root, no setpriv, no folder others can reach):
 * then the tests skip, or fail naming the cause under REQUIRE_ALL. Call at the top level of the file.
 */
export function useOtherUser(): OtherUser | undefined {
  const base = [tmpdir(), '/tmp', '/var/tmp', '/dev/shm'].find(reachableByOthers)
  const unavailable =
    process.getuid?.() !== 0
      ? 'the other-user test needs root, to run a process as nobody'
      : spawnSync('setpriv', ['--version']).status !== 0
        ? 'the other-user test needs setpriv (util-linux) to run a process as nobody'
        : base === undefined
          ? `no folder that nobody can reach (tried ${tmpdir()}, /tmp, /var/tmp, /dev/shm)`
          : undefined
  if (mustSkip('SETPRIV', unavailable) || base === undefined) return undefined

  const root = mkdtempSync(join(base, 'peerdir-other-user-'))
  afterAll(() => rmSync(root, { recursive: true, force: true }))
  chmodSync(root, 0o755)
  const node = join(root, 'node')
  const realNode = realpathSync(nodeBin)
  try {
    // The same inode as the project's Node: its mode is the project's to keep, not this test's to set.
    linkSync(realNode, node)
  } catch {
    copyFileSync(realNode, node)
    chmodSync(node, 0o755)
  }
  copyFileSync(join(repoRoot, 'package.json'), join(root, 'package.json'))
  cpSync(join(repoRoot, 'dist'), join(root, 'dist'), { recursive: true })
  for (const dir of runtimeModules()) cpSync(dir, join(root, relative(repoRoot, dir)), { recursive: true })

  const probe = spawnSync(asNobody[0] as string, [...asNobody.slice(1), node, '--version'], {
    cwd: root,
    encoding: 'utf8',
  })
  if (probe.status !== 0)
    throw new Error(`nobody cannot run the copied Node in ${root}: ${probe.stderr || probe.error}`)

  return {
    root,
    node,
    peer: { command: [node, join(root, relative(repoRoot, peerBin))], cwd: root },
    directory: { command: [node, join(root, relative(repoRoot, directoryBin))], cwd: root },
    folder: (prefix, owned = false) => {
      const dir = mkdtempSync(join(root, prefix))
      chmodSync(dir, 0o755)
      if (owned) chownSync(dir, nobody, nobody)
      return dir
    },
  }
}
