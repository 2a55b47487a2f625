import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** A download's temporary files in `dir`: the hidden .part and its .part.json resume record. */
export const partFiles = (dir: string) => readdirSync(dir).filter((f) => /\.part(\.json)?$/.test(f))

/** The chunks a download's resume record in `dir` calls verified (none without a record). */
export function recordedChunks(dir: string): number[] {
  const name = readdirSync(dir).find((f) => f.endsWith('.part.json'))
  if (!name) return []
  const record = JSON.parse(readFileSync(join(dir, name), 'utf8')) as {
    size: number
    chunkSize: number
    done: string
  }
  const done = Buffer.from(record.done, 'base64')
  const chunks = Math.ceil(record.size / record.chunkSize)
  return Array.from({ length: chunks }, (_, i) => i).filter((i) => ((done[i >> 3] ?? 0) >> (i & 7)) & 1)
}

/** The chunks the record calls verified whose bytes in the .part file are not `content`'s. */
export function recordedButWrong(dir: string, content: Buffer, chunkSize: number): number[] {
  const part = readdirSync(dir).find((f) => f.endsWith('.part'))
  if (!part) return recordedChunks(dir)
  const bytes = readFileSync(join(dir, part))
  return recordedChunks(dir).filter((i) => {
    const range = [i * chunkSize, (i + 1) * chunkSize] as const
    return !bytes.subarray(...range).equals(content.subarray(...range))
  })
}

/** The chunks of `content` already in place in the .part file in `dir` (written, whether recorded yet or not). */
export function chunksOnDisk(dir: string, content: Buffer, chunkSize: number): number[] {
  const part = readdirSync(dir).find((f) => f.endsWith('.part'))
  if (!part) return []
  let bytes: Buffer
  try {
    bytes = readFileSync(join(dir, part))
  } catch {
    return [] // renamed into place between the listing and the read
  }
  const chunks = Math.ceil(content.length / chunkSize)
  return Array.from({ length: chunks }, (_, i) => i).filter((i) => {
    const range = [i * chunkSize, Math.min((i + 1) * chunkSize, content.length)] as const
    return bytes.subarray(...range).equals(content.subarray(...range))
  })
}
