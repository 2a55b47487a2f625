import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { nodeBin, postJson } from '../support/directory-process.ts'
import { peerBin } from '../support/peer-process.ts'
import { freePort } from '../support/ports.ts'
import { commandUnavailable, mustSkip } from '../support/requirements.ts'
import { startTerminal } from '../support/terminal.ts'
import { useTestNetwork } from '../support/test-network.ts'

/** What `peer` does on a real terminal (tmux): the hidden password prompt, Ctrl-C, the progress bar. */
const noTmux = mustSkip('TMUX', commandUnavailable('tmux', ['-V'], 'tmux'))
const network = useTestNetwork()
const MiB = 1024 * 1024

const peerState = async (username: string) => {
  const { peers } = (await (await fetch(`${network.directoryUrl}/v1/peers`)).json()) as {
    peers: { username: string; state: string }[]
  }
  return peers.find((p) => p.username === username)?.state
}

describe('peer on a terminal', () => {
  it.skipIf(noTmux)('asks for the password without echoing it, and Ctrl-C logs out and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-tina-'))
    const password = 'typed at the prompt 42'
    const port = await freePort()
    const terminal = startTerminal(
      'prompt',
      `env -u PEER_PASSWORD PEERDIR_STATE_DIR=${network.stateRoot} ${nodeBin} ${peerBin} start --name tina ` +
        `--port ${port} --dir ${dir} --directory ${network.directoryUrl}; echo "exit=$?"; sleep 60`,
    )
    try {
      await terminal.waitFor('Password:')
      terminal.keys(password, 'Enter')
      await terminal.waitFor(/published \d+ files/)
      expect(terminal.screen()).not.toContain(password)
      expect(await peerState('tina')).toBe('up')

      terminal.keys('C-c')
      await terminal.waitFor('exit=0')
      expect(terminal.screen()).toContain('SIGINT: logging out and stopping')
      expect(await peerState('tina')).toBe('down')
    } finally {
      terminal.close()
    }
    // The account's password is what was typed, without the Enter.
    const login = (secret: string) =>
      postJson(`${network.directoryUrl}/v1/login`, {
        username: 'tina',
        password: secret,
        url: 'http://127.0.0.1:9',
      })
    expect((await login(`${password}\n`)).status).toBe(401)
    expect((await login(password)).status).toBe(200)
  })

  it.skipIf(noTmux)(
    'draws a progress bar while peer get runs, then says where the verified file is',
    async () => {
      const content = randomBytes(6 * MiB)
      const sha = createHash('sha256').update(content).digest('hex')
      // At 2 MiB/s the 6 MiB take three seconds at least: the bar is on screen part-way for certain.
      const source = await network.peer('bar-source', { args: ['--max-upload-rate', '2M'] })
      writeFileSync(join(source.dir, 'slow.bin'), content)
      await source.waitFor(/published changes: \+1/)
      const fetcher = await network.peer('bar-fetcher')
      const terminal = startTerminal(
        'bar',
        `PEERDIR_STATE_DIR=${network.stateRoot} ${nodeBin} ${peerBin} get ${sha} --port ${fetcher.port}; ` +
          `echo "exit=$?"; sleep 60`,
      )
      try {
        await terminal.waitFor(/slow\.bin [█░]{10,} +([1-9]|[1-9]\d)% .* 1 source/)
        await terminal.waitFor('exit=0')
        expect(terminal.screen()).toMatch(/slow\.bin \(6\.00 MiB\) verified and saved to .*slow\.bin/)
      } finally {
        terminal.close()
      }
      expect(readFileSync(join(fetcher.dir, 'slow.bin')).equals(content)).toBe(true)
    },
  )
})
