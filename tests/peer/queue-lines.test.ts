import { describe, expect, it } from 'vitest'
import { ordinal } from '../../peer/src/cli/format.ts'
import { queueLine } from '../../peer/src/cli/get.ts'
import { uploadsLine } from '../../peer/src/cli/listing-commands.ts'

describe('what the CLI says about upload queues', () => {
  it('names places as people say them', () => {
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111].map(ordinal)).toEqual([
      '1st',
      '2nd',
      '3rd',
      '4th',
      '11th',
      '12th',
      '13th',
      '21st',
      '22nd',
      '101st',
      '111th',
    ])
  })

  it('tells which sources queue a download, and when every source left does', () => {
    const alice = { username: 'alice', dropped: '', queued: 3 }
    const bob = { username: 'bob', dropped: '', queued: 0 }
    const gone = { username: 'mallory', dropped: 'sent a bad chunk', queued: 0 }
    expect(queueLine([bob])).toBe('')
    expect(queueLine([alice, bob])).toBe('queued at alice: 3rd')
    expect(queueLine([alice, gone])).toBe(
      'waiting for a turn: every source has us in its upload queue (queued at alice: 3rd)',
    )
  })

  it('shows who is served and who waits, briefly', () => {
    expect(uploadsLine({ slots: 8, active: [], queued: [] })).toBe('uploading to nobody; 0 of 8 slots')
    const queued = ['b', 'c', 'd', 'e', 'f', 'g', 'h'].map((username, i) => ({ username, position: i + 1 }))
    expect(uploadsLine({ slots: 1, active: [{ username: 'a', bytes: 1536 }], queued })).toBe(
      'uploading to a (1.50 KiB); 1 of 1 slots; waiting: b, c, d, e, f, 2 more',
    )
  })
})
