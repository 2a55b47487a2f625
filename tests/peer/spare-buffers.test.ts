import { describe, expect, it } from 'vitest'
import { copyInto, SpareBuffers } from '../../peer/src/wire/spare-buffers.ts'

describe('copyInto', () => {
  it('copies a source once into shared memory at an offset, leaving the bytes around it as they were', () => {
    const target = new SpareBuffers(1, { shared: true }).take(64)
    expect(target.buffer).toBeInstanceOf(SharedArrayBuffer)
    target.fill(0xee)
    const source = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9])
    copyInto(target, 10, source.subarray(2, 7))
    expect([...target.subarray(8, 17)]).toEqual([0xee, 0xee, 3, 4, 5, 6, 7, 0xee, 0xee])
    copyInto(target, 0, source.subarray(0, 0)) // nothing to copy: nothing changes, nothing thrown
    expect(target[0]).toBe(0xee)
    // Up to the very end of the target, and no further.
    copyInto(target, 60, source.subarray(0, 4))
    expect([...target.subarray(58)]).toEqual([0xee, 0xee, 1, 2, 3, 4])
  })
})
