import { describe, expect, it } from 'vitest'
import { parseRange } from '../../peer/src/daemon/byte-range.ts'

describe('parseRange', () => {
  it('reads the three forms of one byte range', () => {
    expect(parseRange('bytes=0-99', 1000)).toEqual({ start: 0, end: 100 })
    expect(parseRange('bytes=500-', 1000)).toEqual({ start: 500, end: 1000 })
    expect(parseRange('bytes=-10', 1000)).toEqual({ start: 990, end: 1000 })
    expect(parseRange('bytes=-5000', 1000)).toEqual({ start: 0, end: 1000 })
    expect(parseRange('bytes=990-99999', 1000)).toEqual({ start: 990, end: 1000 })
    expect(parseRange('BYTES = 1 - 1', 1000)).toEqual({ start: 1, end: 2 })
  })

  it('says when no byte of the range exists', () => {
    expect(parseRange('bytes=1000-', 1000)).toBe('unsatisfiable')
    expect(parseRange('bytes=99999999999999999999-', 1000)).toBe('unsatisfiable')
    expect(parseRange('bytes=-0', 1000)).toBe('unsatisfiable')
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable')
    expect(parseRange('bytes=-1', 0)).toBe('unsatisfiable')
  })

  it('ignores what is not one range (the whole content is sent)', () => {
    for (const header of [
      undefined,
      '',
      'bytes=',
      'bytes=-',
      'bytes=5-3',
      'bytes=0-1,5-6',
      'items=0-1',
      'bytes=a-b',
    ])
      expect(parseRange(header, 1000), String(header)).toBeUndefined()
  })
})
