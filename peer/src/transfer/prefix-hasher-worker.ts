import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'
import { parentPort, workerData } from 'node:worker_threads'

// The thread behind PrefixHasher: hashes `path` from the start, up to what the download has verified.
const READ_BYTES = 4 * 1024 * 1024
const port = parentPort
if (!port) throw new Error('prefix-hasher-worker runs only as a worker thread')

const handle = await open((workerData as { path: string }).path, 'r')
const hash = createHash('sha256')
const buffer = Buffer.allocUnsafe(READ_BYTES)
let hashed = 0
let target = 0
let end: number | undefined
let running = false
let finished = false

async function catchUp() {
  if (running) return
  running = true
  try {
    while (hashed < target) {
      const length = Math.min(READ_BYTES, target - hashed)
      const { bytesRead } = await handle.read(buffer, 0, length, hashed)
      if (bytesRead === 0) throw new Error(`the file ends at ${hashed} bytes, before ${target}`)
      hash.update(buffer.subarray(0, bytesRead))
      hashed += bytesRead
    }
    if (end !== undefined && hashed >= end && !finished) {
      finished = true
      await handle.close()
      port?.postMessage({ sha256: hash.digest('hex') })
    }
  } catch (err) {
    finished = true
    port?.postMessage({ error: err instanceof Error ? err.message : String(err) })
  } finally {
    running = false
  }
  if (!finished && (hashed < target || (end !== undefined && hashed >= end))) void catchUp()
}

port.on('message', (message: { upTo?: number; end?: number }) => {
  if (message.upTo !== undefined) target = Math.max(target, message.upTo)
  if (message.end !== undefined) end = message.end
  void catchUp()
})
