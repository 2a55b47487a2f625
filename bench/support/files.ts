import { createHash, randomFillSync } from 'node:crypto'
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs'

const MiB = 1024 * 1024

export function makeFile(path: string, bytes: number) {
  const fd = openSync(path, 'w')
  const block = Buffer.allocUnsafe(8 * MiB)
  for (let written = 0; written < bytes; written += block.length) {
    randomFillSync(block)
    writeSync(fd, block, 0, Math.min(block.length, bytes - written))
  }
  closeSync(fd)
}

export async function hashFile(path: string) {
  const hash = createHash('sha256')
  for await (const data of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(data as Buffer)
  return hash.digest('hex')
}
