import net from 'node:net'
import { afterEach, expect, it } from 'vitest'
import { ListeningPort } from '../../peer/src/wire/listening-port.ts'
import { until } from '../support/peer-process.ts'

const opened: ListeningPort[] = []
const sockets: net.Socket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  await Promise.all(opened.splice(0).map((port) => port.stop()))
})

async function listening(port = 0) {
  const made = new ListeningPort()
  opened.push(made)
  await made.listen(port, '127.0.0.1')
  return made
}

const connected = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(socket))
    sockets.push(socket)
    socket.once('error', reject)
  })

it('reads back the port the kernel picked, and rejects a port already taken', async () => {
  const first = await listening()
  expect(first.port).toBeGreaterThan(0)
  await expect(listening(first.port)).rejects.toMatchObject({ code: 'EADDRINUSE' })
})

it('holds a connection that arrives before it serves, in its slot, and hands it on once it does', async () => {
  const port = await listening()
  const client = await connected(port.port)
  client.write('first bytes')
  // Admitted (the slot is taken), not yet handed to anything.
  await until(async () => port.slots.size === 1, 'the connection to take its slot')
  const received = new Promise<string>((resolve) => {
    port.serve((socket) => socket.once('data', (bytes) => resolve(bytes.toString())))
  })
  expect(await received).toBe('first bytes')
})

it('drops connections still waiting when it stops', async () => {
  const port = await listening()
  const client = await connected(port.port)
  await until(async () => port.slots.size === 1, 'the connection to take its slot')
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
  await port.stop()
  await closed
  expect(port.slots.size).toBe(0)
})
