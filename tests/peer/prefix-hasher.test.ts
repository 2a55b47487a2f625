import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PrefixHasher } from '../../peer/src/transfer/prefix-hasher.ts'

// The whole-file hash a download computes as it goes: chunks land in any order, some hashed from
// memory, the rest read back; the digest is always the file's sha256.
const CHUNK = 4096

describe('PrefixHasher', () => {
  it('hashes the whole file whatever order its chunks are written in', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-prefix-'))
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
          const handle = await open(join(dir, 'download.part'), 'w+')
          try {
            await handle.truncate(content.length)
            const hasher = new PrefixHasher(handle)
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
            await handle.close()
          }
        },
      ),
      { numRuns: 60 },
    )
  })
})
