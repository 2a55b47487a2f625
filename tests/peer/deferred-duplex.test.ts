import { once } from 'node:events'
import { Duplex } from 'node:stream'
import { finished } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { DeferredDuplex } from '../../peer/src/wire/relay-tunnel.ts'

/** A tunnel's socket as the test drives it: what it is given to read, what was written to it. */
function target() {
  const written: Buffer[] = []
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      written.push(chunk)
      done()
    },
  })
  return { socket, written }
}

describe('DeferredDuplex', () => {
  it('hands its reader every byte and the end of a tunnel that ended and closed before they were read', async () => {
    const { socket } = target()
    const duplex = new DeferredDuplex(Promise.resolve(socket))
    socket.push(Buffer.from('the answer'))
    socket.push(null)
    socket.once('end', () => socket.destroy())
    await once(socket, 'close')
    // Only now does the reader start: the peer's last bytes must still be there, then the end.
    const read: Buffer[] = []
    duplex.on('data', (chunk: Buffer) => read.push(chunk))
    await finished(duplex, { writable: false })
    expect(Buffer.concat(read).toString()).toBe('the answer')
  })

  it('fails its reader when the tunnel closes without ending', async () => {
    const { socket } = target()
    const duplex = new DeferredDuplex(Promise.resolve(socket))
    socket.push(Buffer.from('half an'))
    await new Promise((resolve) => setImmediate(resolve))
    socket.destroy()
    duplex.resume()
    await expect(finished(duplex, { writable: false })).rejects.toThrow(/Premature close/)
  })

  it('writes once the tunnel is there, and a failure to make it fails the duplex', async () => {
    const { socket, written } = target()
    let made: (socket: Duplex) => void = () => {}
    const duplex = new DeferredDuplex(new Promise<Duplex>((resolve) => (made = resolve)))
    duplex.write('preface')
    made(socket)
    await new Promise((resolve) => duplex.write('request', resolve))
    expect(Buffer.concat(written).toString()).toBe('prefacerequest')

    const failing = new DeferredDuplex(Promise.reject(new Error('the relay refused a tunnel (404)')))
    await expect(once(failing, 'error')).resolves.toEqual([new Error('the relay refused a tunnel (404)')])
  })
})
