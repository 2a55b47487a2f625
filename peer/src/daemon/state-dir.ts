import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

/**
 * Each daemon keeps its state in `<root>/<port>/` (root: PEERDIR_STATE_DIR or ~/.peerdir), a folder only
 * its owner can enter: the Unix socket its CLI drives it through, the control token that socket also
 * asks for, and the hash cache.
 */
export function stateDirFor(
  port: number,
  root = process.env.PEERDIR_STATE_DIR ?? join(homedir(), '.peerdir'),
) {
  return join(root, String(port))
}

export type ControlInfo = { port: number; token: string; pid: number; socket: string }

/** Where a daemon listens for its CLI (a Unix socket path holds at most 107 bytes). */
export const controlSocketPath = (stateDir: string) => join(stateDir, 'control.sock')

/** Node's crypto is left to the daemon (it makes the token): the CLI only reads this folder, and starts faster. */
export function writeControlInfo(stateDir: string, control: ControlInfo) {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 })
  chmodSync(stateDir, 0o700)
  const path = join(stateDir, 'control.json')
  writeFileSync(path, `${JSON.stringify(control)}\n`, { mode: 0o600 })
  chmodSync(path, 0o600)
}

export function readControlInfo(stateDir: string): ControlInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'control.json'), 'utf8')) as ControlInfo
  } catch {
    return undefined
  }
}
