import { existsSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ResumeRecord } from '../../peer/src/transfer/resume-record.ts'

const meta = { sha256: 'a'.repeat(64), size: 3 << 20, chunkSize: 1 << 20, chunks: 3 }

describe('a download’s resume record', () => {
  it('stays removed: saves queued before the removal, and saves after it, write nothing back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-record-'))
    const record = new ResumeRecord(join(dir, '.x.part.json'), meta)
    record.mark(0)
    const queued = [record.save(), record.save()]
    await record.remove()
    // What a failed download's clean-up does after a discarded file: save what is verified.
    await record.save()
    await Promise.all(queued)
    expect(readdirSync(dir)).toEqual([])
  })

  it('saves what is verified and loads it back for the same content only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-record-'))
    const path = join(dir, '.x.part.json')
    const record = new ResumeRecord(path, meta)
    record.mark(2)
    await record.save()
    expect(existsSync(path)).toBe(true)
    const loaded = await ResumeRecord.load(path, meta)
    expect([0, 1, 2].map((i) => loaded?.has(i))).toEqual([false, false, true])
    expect(await ResumeRecord.load(path, { ...meta, sha256: 'b'.repeat(64) })).toBeUndefined()
  })
})
