import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { OffThreadHasher } from '../../peer/src/transfer/off-thread-hasher.ts'
import { type DownloadHasher, PrefixHasher } from '../../peer/src/transfer/prefix-hasher.ts'

// A download's hashing, on the receiving thread or on a thread of its own: each chunk checked where it
// landed (ordinary or shared memory); the whole file as its chunks land in any order, hashed from memory
// or read back; the digest is always the file's sha256, and a file shorter than it should be is an
// error, never a digest.
const CHUNK = 4096

const hashers: [string, (path: string, handle: Awaited<ReturnType<typeof open>>) => DownloadHasher][] = [
  ['PrefixHasher', (_path, handle) => new PrefixHasher(handle)],
  ['OffThreadHasher', (path) => new OffThreadHasher(path)],
]

describe.each(hashers)('%s', (_name, makeHasher) => {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-prefix-'))

  it('hashes the whole file whatever order its chunks are written in', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: CHUNK - 1 }),
        fc.nat(),
        async (whole, tail, seed) => {
          const content = randomBytes(whole * CHUNK + tail)
          const chunks = Math.ceil(content.length / CHUNK)
          const order =
            fc.sample(fc.shuffledSubarray([...Array(chunks).keys()], { minLength: chunks }), {
              numRuns: 1,
              seed,
            })[0] ?? []
          const path = join(dir, 'download.part')
          const handle = await open(path, 'w+')
          const hasher = makeHasher(path, handle)
          try {
            await handle.truncate(content.length)
            const done = new Set<number>()
            let prefix = 0
            for (const index of order) {
              const data = content.subarray(index * CHUNK, (index + 1) * CHUNK)
              await handle.write(data, 0, data.length, index * CHUNK)
              done.add(index)
              hasher.offer(index * CHUNK, data)
              while (done.has(prefix)) prefix++
              hasher.advanceTo(Math.min(content.length, prefix * CHUNK))
              if (index % 3 === 0) await new Promise((resolve) => setImmediate(resolve))
            }
            expect(await hasher.digest(content.length)).toBe(
              createHash('sha256').update(content).digest('hex'),
            )
          } finally {
            hasher.close()
            await handle.close()
          }
        },
      ),
      { numRuns: 40 },
    )
  })

  it('checks chunks in ordinary and in shared memory, and tells an altered one', async () => {
    const path = join(dir, 'verify.part')
    const handle = await open(path, 'w+')
    const hasher = makeHasher(path, handle)
    try {
      const chunk = randomBytes(64 * 1024)
      const expected = createHash('sha256').update(chunk).digest()
      const shared = Buffer.from(new SharedArrayBuffer(chunk.length + 100))
      chunk.copy(shared, 100)
      const altered = Buffer.from(chunk)
      altered[12345] = (altered[12345] as number) ^ 1
      const checks = [chunk, shared.subarray(100), altered, shared.subarray(99, 99 + chunk.length)]
      expect(await Promise.all(checks.map((data) => hasher.verify(data, expected)))).toEqual([
        true,
        true,
        false,
        false,
      ])
    } finally {
      hasher.close()
      await handle.close()
    }
  })

  it('fails, saying where the file ends, when it is shorter than the size asked for', async () => {
    const path = join(dir, 'short.part')
    const handle = await open(path, 'w+')
    const hasher = makeHasher(path, handle)
    try {
      await handle.write(randomBytes(3 * CHUNK), 0, 3 * CHUNK, 0)
      await expect(hasher.digest(5 * CHUNK)).rejects.toThrow(`the file ends at ${3 * CHUNK} bytes`)
    } finally {
      hasher.close()
      await handle.close()
    }
  })
})
