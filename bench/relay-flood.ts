// The relay's memory under callers that open tunnels and never read them: stub relayed peers that take
// every tunnel and send into it without end, a relay in a process of its own, and CALLS tunnels (from
// as many loopback addresses as the per-caller share needs) left unread. Prints the relay's RSS before
// and after. `npx tsx bench/relay-flood.ts [tunnels] [settle seconds]`
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { listen } from '../tests/support/ports.ts'
import { rawTunnel } from '../tests/support/relay-tunnels.ts'

const calls = Number(process.argv[2] ?? 512)
const settleSeconds = Number(process.argv[3] ?? 10)
const PEERS = Math.ceil(calls / 64)
const PER_ADDRESS = 4
const chunk = Buffer.alloc(64 * 1024, 7)

const stubs = await Promise.all(
  Array.from({ length: PEERS }, async () => {
    const stub = http2.createServer()
    stub.on('stream', (stream) => {
      stream.on('error', () => {})
      stream.respond({ ':status': 200, 'peerdir-inner': 'plaintext' })
      const pump = () => {
        while (!stream.destroyed && stream.write(chunk)) {}
      }
      stream.on('drain', pump)
      pump()
    })
    await listen(stub)
    return stub
  }),
)
const child = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    join(import.meta.dirname, 'support/relay-with-stub-links.ts'),
    ...stubs.map((s) => String((s.address() as AddressInfo).port)),
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
)
const relayPort = await new Promise<number>((resolve) =>
  child.stdout?.once('data', (d: Buffer) => resolve(JSON.parse(String(d)).port)),
)
const rssMiB = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
await sleep(1000)
const before = rssMiB()
let answered = 0
let refused = 0
const tunnels: { destroy: () => void }[] = []
await Promise.all(
  Array.from({ length: calls }, async (_, i) => {
    // Callers from addresses of their own (the relay shares a peer's tunnels out by address).
    const address = `127.0.${Math.floor(i / PER_ADDRESS / 250)}.${2 + (Math.floor(i / PER_ADDRESS) % 250)}`
    const { socket } = await rawTunnel(relayPort, `stub${i % PEERS}`, { localAddress: address }).catch(
      () => ({
        socket: undefined,
      }),
    )
    if (!socket) return void refused++
    answered++
    socket.on('error', () => {})
    tunnels.push(socket) // paused: never read
  }),
)
await sleep(settleSeconds * 1000)
const after = rssMiB()
console.log(
  `${calls} tunnels asked (${answered} opened, ${refused} refused), never read: relay RSS ${before.toFixed(0)} MiB before, ${after.toFixed(0)} MiB after ${settleSeconds} s`,
)
child.kill()
for (const t of tunnels) t.destroy()
for (const s of stubs) s.close()
process.exit(0)
