import { describe, expect, it } from 'vitest'
import { DaemonEvents } from '../../peer/src/daemon/daemon-events.ts'
import { DownloadBoard } from '../../peer/src/ui/download-board.ts'

const file = (n: number) => ({ name: `f${n}.bin`, sha256: n.toString(16).padStart(64, '0'), size: 100 })

describe('the web app’s list of downloads', () => {
  it('follows each download from the events, newest first, and counts times served', () => {
    const events = new DaemonEvents()
    const board = new DownloadBoard(events)
    events.emit({ type: 'download-started', ...file(1) })
    events.emit({ type: 'download-progress', ...file(1), doneBytes: 40, activeSources: 2 })
    expect(board.list()).toMatchObject([
      { name: 'f1.bin', state: 'running', doneBytes: 40, activeSources: 2 },
    ])
    events.emit({ type: 'download-started', ...file(2) })
    events.emit({ type: 'download-failed', ...file(2), reason: 'no live source' })
    events.emit({ type: 'download-completed', ...file(1), path: '/s/f1.bin', seconds: 1, sources: ['alice'] })
    expect(board.list()).toMatchObject([
      { name: 'f1.bin', state: 'done', doneBytes: 100, path: '/s/f1.bin', sources: ['alice'] },
      { name: 'f2.bin', state: 'failed', reason: 'no live source' },
    ])
    // A source's queue place is shown until its turn comes (place 0) or the download ends.
    events.emit({ type: 'download-started', ...file(3) })
    events.emit({ type: 'download-queued', ...file(3), queuedAt: 'alice', queuePosition: 3 })
    events.emit({ type: 'download-queued', ...file(3), queuedAt: 'bob', queuePosition: 1 })
    events.emit({ type: 'download-queued', ...file(3), queuedAt: 'alice', queuePosition: 2 })
    expect(board.list()[0]).toMatchObject({ name: 'f3.bin', queued: { alice: 2, bob: 1 } })
    events.emit({ type: 'download-queued', ...file(3), queuedAt: 'bob', queuePosition: 0 })
    expect(board.list()[0]?.queued).toEqual({ alice: 2 })
    events.emit({ type: 'download-completed', ...file(3), path: '/s/f3.bin', seconds: 1, sources: ['bob'] })
    expect(board.list()[0]?.queued).toEqual({})
    const served = { type: 'upload-served', username: 'bob', bytes: 100, ...file(1) } as const
    events.emit(served)
    events.emit(served)
    expect(board.served(file(1).sha256)).toBe(2)
    expect(board.served(file(2).sha256)).toBe(0)
  })

  it('keeps a bounded list, dropping the oldest ended downloads and never a running one', () => {
    const events = new DaemonEvents()
    const board = new DownloadBoard(events)
    events.emit({ type: 'download-started', ...file(0) })
    for (let n = 1; n <= 500; n++) {
      events.emit({ type: 'download-failed', ...file(n), reason: 'gone' })
    }
    const listed = board.list()
    expect(listed).toHaveLength(200)
    expect(listed.at(-1)?.name).toBe('f0.bin')
    expect(listed[0]?.name).toBe('f500.bin')
  })
})
