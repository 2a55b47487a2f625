// The helper every process-starting test goes through: the port read from the ready line, and a clear
// error (with the process's output) when the line never comes.
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { nodeBin, repoRoot } from './support/directory-process.ts'
import { startReadyProcess } from './support/ready-process.ts'

const node = (script: string) => [nodeBin, '-e', script]
const ready = /listening on 127\.0\.0\.1:(?<port>\d+)/

describe('a process started and waited for until its ready line', () => {
  it('reads the port the kernel chose from the ready line, and goes on reading its output', async () => {
    const server = await startReadyProcess({
      name: 'server',
      command: node(`
        const server = require('node:net').createServer().listen(0, '127.0.0.1', () => {
          console.error('warming up')
          console.log('listening on 127.0.0.1:' + server.address().port)
          setTimeout(() => console.log('published 3 files'), 50)
        })`),
      cwd: repoRoot,
      ready,
    })
    try {
      expect(server.port).toBeGreaterThan(0)
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect(server.port, '127.0.0.1')
        socket.once('connect', () => {
          socket.destroy()
          resolve()
        })
        socket.once('error', reject)
      })
      expect((await server.waitFor(/published (\d+) files/))[1]).toBe('3')
      expect(server.output()).toMatch(/^warming up\n/)
    } finally {
      expect(await server.stop()).toBe(null) // ended by SIGTERM
    }
  })

  it('fails with the process’s output when it ends before its ready line', async () => {
    const started = startReadyProcess({
      name: 'doomed',
      command: node(`console.error('port 1 is in use'); process.exit(3)`),
      cwd: repoRoot,
      ready,
    })
    await expect(started).rejects.toThrow(/^doomed ended \(3\) before .*:\nport 1 is in use\n$/)
  })

  it('fails, and ends the process, when no ready line comes in time', async () => {
    // A shell, which prints in a millisecond where Node takes a few hundred (more than the wait, once,
    // with two runs side by side), and a wait long enough for a loaded machine to run it.
    const started = startReadyProcess({
      name: 'mute',
      command: ['sh', '-c', 'echo starting; exec sleep 60'],
      cwd: repoRoot,
      ready,
      timeoutMs: 3000,
    })
    await expect(started).rejects.toThrow(/^mute: no .* in 3000 ms:\nstarting\n$/)
  })
})
