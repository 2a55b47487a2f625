import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type ChunkRequest, ChunkScheduler } from '../../peer/src/transfer/chunk-scheduler.ts'

const scheduler = (
  chunks: number,
  options: {
    done?: number[]
    perSource?: number
    runChunks?: number
    readPositions?: () => number[]
    readAheadChunks?: () => number
    splitParts?: () => number
  } = {},
) =>
  new ChunkScheduler({
    chunks,
    done: (index) => options.done?.includes(index) ?? false,
    perSource: options.perSource ?? 2,
    runChunks: options.runChunks ?? 8,
    readPositions: options.readPositions,
    readAheadChunks: options.readAheadChunks,
    splitParts: options.splitParts,
  })

/** One source slot each, runs of up to 8: the readers' tests. */
const readScheduler = (chunks: number, readPositions: () => number[]) =>
  scheduler(chunks, { perSource: 1, runChunks: 8, readPositions })

/** One source, a reader at chunk 0 whose read-ahead (chunks 0-3) fills the source's reader slots. */
function readingFromStart() {
  const reads = [0]
  const s = scheduler(40, { perSource: 4, runChunks: 8, readPositions: () => reads })
  s.addSource('a')
  const flagged = s.plan().filter((request) => request.readerWaiting)
  expect(flagged.map((request) => request.chunks)).toEqual([[0], [1], [2], [3]])
  return { reads, s, flagged }
}

/** Delivers every chunk of a request as verified and ends it. */
function deliver(s: ChunkScheduler, request: ChunkRequest) {
  for (const index of request.chunks) if (s.claim(index)) s.written(index)
  s.ended(request)
}

describe('ChunkScheduler', () => {
  it('hands out consecutive runs, shorter as what is left would not spread over every slot', () => {
    const s = scheduler(20)
    s.addSource('a')
    s.addSource('b')
    // A fair share of what is still unasked over the four slots: 20/4, then 15/4, 12/4, 9/4.
    const first = s.plan()
    expect(first).toEqual([
      { source: 'a', chunks: [0, 1, 2, 3, 4] },
      { source: 'b', chunks: [5, 6, 7] },
      { source: 'a', chunks: [8, 9, 10] },
      { source: 'b', chunks: [11, 12] },
    ])
    expect(s.plan()).toEqual([]) // every slot is busy
    deliver(s, first[1] as ChunkRequest)
    expect(s.plan()).toEqual([{ source: 'b', chunks: [13] }]) // 7 left over 4 slots
  })

  it('never asks for chunks a resumed download already has', () => {
    const s = scheduler(6, { done: [0, 1, 4], perSource: 4 })
    s.addSource('a')
    const asked = s.plan().flatMap((r) => r.chunks)
    expect(asked.sort()).toEqual([2, 3, 5])
  })

  it('in endgame asks a second source for a chunk in flight, never a third', () => {
    const s = scheduler(2, { perSource: 1 })
    s.addSource('a')
    s.addSource('b')
    s.addSource('c')
    const first = s.plan()
    expect(first).toEqual([
      { source: 'a', chunks: [0] },
      { source: 'b', chunks: [1] },
      { source: 'c', chunks: [0] },
    ])
    expect(s.fetchers(0)).toBe(2)
    deliver(s, first[1] as ChunkRequest) // b is done with chunk 1 and free again
    expect(s.plan()).toEqual([]) // chunk 0 already has two sources
  })

  it('gives a dropped source’s chunks to the others at once, and takes its late delivery once', () => {
    const s = scheduler(4, { perSource: 1, runChunks: 4 })
    s.addSource('slow')
    const [slow] = s.plan()
    expect(slow).toEqual({ source: 'slow', chunks: [0, 1, 2, 3] })
    s.addSource('fast')
    s.dropSource('slow')
    const [fast] = s.plan()
    expect(fast?.source).toBe('fast')
    expect(fast?.chunks).toEqual([0, 1, 2, 3])
    // The dropped source's stream is still open and brings chunk 0 first: it is written once.
    expect(s.claim(0)).toBe(true)
    s.written(0)
    expect(s.claim(0)).toBe(false)
    s.ended(slow as ChunkRequest)
    deliver(s, fast as ChunkRequest)
    expect(s.complete).toBe(true)
    expect(s.openRequests).toBe(0)
  })

  it('asks again for what a request did not deliver', () => {
    const s = scheduler(3, { perSource: 1 })
    s.addSource('a')
    const [request] = s.plan()
    expect(request?.chunks).toEqual([0, 1, 2])
    if (s.claim(0)) s.written(0)
    s.ended(request as ChunkRequest) // the stream broke after chunk 0
    expect(s.plan()).toEqual([{ source: 'a', chunks: [1, 2] }])
  })

  it('puts the chunks from a read position first, one per request flagged for the reader, in slots of their own', () => {
    const reads: number[] = []
    const s = readScheduler(40, () => reads)
    s.addSource('a')
    const [busy] = s.plan()
    expect(busy).toEqual({ source: 'a', chunks: [0, 1, 2, 3, 4, 5, 6, 7] })
    reads.push(30) // a seek while the only slot for the rest is busy
    const [seek] = s.plan()
    expect(seek).toEqual({ source: 'a', chunks: [30], readerWaiting: true })
    expect(s.plan()).toEqual([]) // perSource (1) reader requests per source
    deliver(s, seek as ChunkRequest)
    expect(s.plan()).toEqual([{ source: 'a', chunks: [31], readerWaiting: true }])
    deliver(s, busy as ChunkRequest)
    // The rest of the file goes on one chunk at a time while the reader's chunks are missing.
    expect(s.plan()).toEqual([{ source: 'a', chunks: [8] }])
  })

  it('holds other readers’ read-ahead while the most urgent reader waits on its chunk', () => {
    // Two readers: the newer (the player's seek to the last chunk) comes first; the older one, at the
    // start, would fill every reader slot with its read-ahead, which the source serves first (earlier
    // in the file).
    const reads = [39, 0]
    const s = scheduler(40, { perSource: 4, runChunks: 8, readPositions: () => reads })
    s.addSource('a')
    const first = s.plan()
    expect(first.filter((request) => request.readerWaiting)).toEqual([
      { source: 'a', chunks: [39], readerWaiting: true },
    ])
    // Nor the older reader's chunks unflagged, as the rest of the file: they go beyond its window.
    expect(first.flatMap((request) => request.chunks)).not.toContain(0)
    expect(first.flatMap((request) => request.chunks)).not.toContain(1)
    deliver(s, first[0] as ChunkRequest)
    // Its chunk is there: the older reader's window goes out again.
    expect(s.plan().filter((request) => request.readerWaiting)).toEqual([
      { source: 'a', chunks: [0], readerWaiting: true },
      { source: 'a', chunks: [1], readerWaiting: true },
      { source: 'a', chunks: [2], readerWaiting: true },
      { source: 'a', chunks: [3], readerWaiting: true },
    ])
  })

  it('cancels the requests of older readers in flight when the newest reader waits on its chunk', () => {
    // ffmpeg: a read from the start, left open, then a jump to the index at the end. The start's
    // read-ahead went out first and fills the reader slots; at the source the jump would wait for it all.
    const { reads, s, flagged } = readingFromStart()
    const asked = s.openRequests
    // One reader, waiting on its own read-ahead: nothing of its own is cancelled.
    expect(s.preempted()).toEqual([])
    reads.unshift(39)
    // Every reader slot is taken by the older reader's window: the jump's chunk gets one only as they go.
    expect(s.preempted()).toEqual(flagged)
    const jump = s.plan().filter((request) => request.readerWaiting)
    expect(jump).toEqual([{ source: 'a', chunks: [39], readerWaiting: true }])
    // Cancelled requests are open until their streams end: counted once, and each ends once.
    expect(s.openRequests).toBe(asked + 1)
    // One had its chunk in hand before the cancel reached it: written once, as any other.
    deliver(s, flagged[0] as ChunkRequest)
    for (const request of flagged.slice(1)) s.ended(request)
    expect(s.openRequests).toBe(asked + 1 - flagged.length)
    expect(s.isDone(0)).toBe(true)
    expect([1, 2, 3].map((index) => s.fetchers(index))).toEqual([0, 0, 0])
    expect(s.preempted()).toEqual([])
    // The older reader's window waits for the jump's chunk, then goes out again.
    expect(s.plan().filter((request) => request.readerWaiting)).toEqual([])
    deliver(s, jump[0] as ChunkRequest)
    expect(s.preempted()).toEqual([])
    expect(s.plan().filter((request) => request.readerWaiting)).toEqual(flagged.slice(1))
  })

  it('cancels the older reader’s requests of a source that queued us and was added again', () => {
    const { reads, s, flagged } = readingFromStart()
    // Its queue refused a later call: dropped until its turn, then added again. The streams asked
    // before still run at that source and take its turns.
    s.dropSource('a')
    s.addSource('a')
    reads.unshift(39)
    expect(s.preempted()).toEqual(flagged)
    // Cancelled once: a second look finds nothing more, and each ends as any other request.
    expect(s.preempted()).toEqual([])
    const asked = s.openRequests
    for (const request of flagged) s.ended(request)
    expect(s.openRequests).toBe(asked - flagged.length)
    expect(s.plan().filter((request) => request.readerWaiting)[0]).toEqual({
      source: 'a',
      chunks: [39],
      readerWaiting: true,
    })
  })

  it('cuts a reader’s chunks into parts, one to each source, in file order', () => {
    const s = scheduler(40, { perSource: 2, readPositions: () => [10], splitParts: () => 4 })
    for (const name of ['a', 'b', 'c', 'd']) s.addSource(name)
    const flagged = s.plan().filter((request) => request.readerWaiting)
    expect(flagged.map(({ source, chunks, part }) => `${source}:${chunks}/${part?.at}of${part?.of}`)).toEqual(
      [
        'a:10/0of4',
        'b:10/1of4',
        'c:10/2of4',
        'd:10/3of4',
        'a:11/0of4',
        'b:11/1of4',
        'c:11/2of4',
        'd:11/3of4',
      ],
    )
    // With one source there is nothing to share: its chunks go whole.
    const alone = scheduler(40, { perSource: 2, readPositions: () => [10], splitParts: () => 4 })
    alone.addSource('a')
    expect(alone.plan().filter((request) => request.part)).toEqual([])
  })

  it('cuts into parts a chunk the reader reached while it was asked for unflagged', () => {
    const reads: number[] = []
    const s = scheduler(40, { perSource: 1, readPositions: () => reads, splitParts: () => 4 })
    s.addSource('a')
    s.addSource('b')
    expect(s.plan()).toEqual([
      { source: 'a', chunks: [0, 1, 2, 3, 4, 5, 6, 7] },
      { source: 'b', chunks: [8, 9, 10, 11, 12, 13, 14, 15] },
    ])
    // At a's source the chunk would come after every flagged call of ours: both sources bring it now.
    reads.push(3)
    expect(s.plan().filter((request) => request.readerWaiting)).toEqual([
      { source: 'a', chunks: [3], readerWaiting: true, part: { at: 0, of: 2 } },
      { source: 'b', chunks: [3], readerWaiting: true, part: { at: 1, of: 2 } },
    ])
  })

  it('asks a part again when its request ended without it, and a chunk whose parts made a wrong hash whole', () => {
    let parts = 2
    const s = scheduler(8, { perSource: 1, readPositions: () => [0], splitParts: () => parts })
    s.addSource('a')
    s.addSource('b')
    const [first, second] = s.plan().filter((request) => request.readerWaiting) as ChunkRequest[]
    expect([first?.part, second?.part]).toEqual([
      { at: 0, of: 2 },
      { at: 1, of: 2 },
    ])
    expect(s.partArrived(first as ChunkRequest)).toBe('kept')
    // A second copy of a part in hand is not wanted.
    expect(s.partArrived(first as ChunkRequest)).toBe('stale')
    s.ended(first as ChunkRequest)
    s.ended(second as ChunkRequest) // its stream broke before the part came
    const again = s.plan().filter((request) => request.readerWaiting)
    expect(again[0]).toEqual({ source: 'a', chunks: [0], readerWaiting: true, part: { at: 1, of: 2 } })
    expect(s.partArrived(again[0] as ChunkRequest)).toBe('complete')
    // The whole chunk's hash is wrong, and nobody can say whose part lied: whole from now on.
    s.splitFailed(0)
    parts = 1
    s.ended(again[0] as ChunkRequest)
    expect(s.partArrived(again[0] as ChunkRequest)).toBe('stale')
    expect(s.plan().filter((request) => request.chunks.includes(0))).toEqual([
      { source: 'a', chunks: [0], readerWaiting: true },
    ])
  })

  it('in endgame leaves a chunk in parts to its parts, and says which requests can bring nothing wanted', () => {
    const s = scheduler(1, { perSource: 1, readPositions: () => [0], splitParts: () => 2 })
    s.addSource('a')
    s.addSource('b')
    const [first, second] = s.plan() as ChunkRequest[]
    expect([first?.part?.at, second?.part?.at]).toEqual([0, 1])
    expect(s.wants(first as ChunkRequest)).toBe(true)
    expect(s.partArrived(first as ChunkRequest)).toBe('kept')
    expect(s.wants(first as ChunkRequest)).toBe(false)
    s.ended(first as ChunkRequest)
    // Nothing is left to ask but the half in flight: a whole copy would throw away the half in hand.
    expect(s.plan()).toEqual([])
    expect(s.partArrived(second as ChunkRequest)).toBe('complete')
    // A spoiled chunk: its parts' copies still on their way are unwanted, the chunk is asked again.
    s.splitFailed(0)
    expect(s.wants(second as ChunkRequest)).toBe(false)
    s.ended(second as ChunkRequest)
    const again = s.plan() as ChunkRequest[]
    expect(again.map((request) => request.chunks)).toEqual([[0], [0]])
    // A failure reported for parts not all in hand (cut since) leaves them be.
    s.splitFailed(0)
    expect(again.every((request) => s.wants(request))).toBe(true)
    if (s.claim(0)) s.written(0)
    expect(again.some((request) => s.wants(request))).toBe(false)
  })

  it('in endgame asks whole a chunk in parts once its readers left it', () => {
    const reads = [0]
    const s = scheduler(1, { perSource: 1, readPositions: () => reads, splitParts: () => 2 })
    s.addSource('a')
    s.addSource('b')
    const [first, second] = s.plan() as ChunkRequest[]
    expect(s.partArrived(first as ChunkRequest)).toBe('kept')
    s.ended(first as ChunkRequest)
    expect(s.plan()).toEqual([])
    // Nobody reads there now: a slow half gets no second copy from a reader's rules, so the whole does.
    reads.length = 0
    expect(s.plan()).toEqual([{ source: 'a', chunks: [0] }])
    expect(s.wants(second as ChunkRequest)).toBe(false)
  })

  it('never cancels a lone reader’s own requests, even beyond a window that has shrunk', () => {
    let ahead = 8
    const s = scheduler(40, {
      perSource: 8,
      readPositions: () => [0],
      readAheadChunks: () => ahead,
    })
    s.addSource('a')
    const flagged = s.plan().filter((request) => request.readerWaiting)
    expect(flagged.flatMap((request) => request.chunks)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    // Its rate fell while it waits on chunk 0: chunks 4 to 7 are beyond its window now, and its own.
    ahead = 4
    expect(s.preempted()).toEqual([])
  })

  it('asks nothing for older readers while the newest reader’s window lacks a chunk', () => {
    // The newest reader has the chunk it reads; the next three are missing. An older reader's chunk
    // asked now would be served before them at the source (earlier in the file), then cancelled again
    // as soon as the newest reader waits: its slot stays free.
    const s = scheduler(40, { done: [8], perSource: 4, runChunks: 8, readPositions: () => [8, 0] })
    s.addSource('a')
    expect(s.plan().filter((request) => request.readerWaiting)).toEqual([
      { source: 'a', chunks: [9], readerWaiting: true },
      { source: 'a', chunks: [10], readerWaiting: true },
      { source: 'a', chunks: [11], readerWaiting: true },
    ])
  })

  it('a seek into a run in flight asks the same source again, flagged, for the chunk it waits on', () => {
    const reads: number[] = []
    const s = readScheduler(32, () => reads)
    s.addSource('only')
    expect(s.plan()).toEqual([{ source: 'only', chunks: [0, 1, 2, 3, 4, 5, 6, 7] }])
    reads.push(5) // behind 0..4 in that stream
    expect(s.plan()).toEqual([{ source: 'only', chunks: [5], readerWaiting: true }])
    expect(s.fetchers(5)).toBe(2)
  })

  it('never asks again for a chunk at the head of its stream', () => {
    const s = readScheduler(32, () => [0])
    s.addSource('only')
    expect(s.plan()).toEqual([
      { source: 'only', chunks: [0], readerWaiting: true },
      { source: 'only', chunks: [4] },
    ])
    expect(s.plan()).toEqual([])
  })

  it('asks for the rest of the file beyond the window of a reader, whose chunks all go flagged', () => {
    // Chunk 2 asked unflagged would get the source's turns only when no flagged call of ours wants
    // them: once the reader got there it would wait on it behind chunk 3, asked flagged meanwhile.
    const s = scheduler(32, { perSource: 2, readPositions: () => [0] })
    s.addSource('only')
    expect(s.plan()).toEqual([
      { source: 'only', chunks: [0], readerWaiting: true },
      { source: 'only', chunks: [1], readerWaiting: true },
      { source: 'only', chunks: [4] },
    ])
  })

  it('asks again, flagged, for a chunk the reader reached while it was asked for unflagged', () => {
    const reads = [0]
    const s = scheduler(32, { perSource: 2, readPositions: () => reads })
    s.addSource('only')
    const [first, second, rest] = s.plan()
    expect(rest).toEqual({ source: 'only', chunks: [4] })
    deliver(s, first as ChunkRequest)
    deliver(s, second as ChunkRequest)
    reads[0] = 4 // 2 and 3 came from elsewhere, say; chunk 4 is still in its unflagged stream
    for (const index of [2, 3]) if (s.claim(index)) s.written(index)
    // The source serves that stream only when no flagged call of ours waits: the reader's chunk first.
    expect(s.plan()[0]).toEqual({ source: 'only', chunks: [4], readerWaiting: true })
  })

  it('asks a second source for the chunk a reader waits on', () => {
    const reads = [5]
    const s = readScheduler(40, () => reads)
    s.addSource('slow')
    expect(s.plan()).toEqual([
      { source: 'slow', chunks: [5], readerWaiting: true },
      { source: 'slow', chunks: [0] },
    ])
    s.addSource('fast')
    let [fast] = s.plan()
    expect(fast).toEqual({ source: 'fast', chunks: [6], readerWaiting: true })
    for (const next of [7, 8]) {
      deliver(s, fast as ChunkRequest)
      ;[fast] = s.plan()
      expect(fast).toEqual({ source: 'fast', chunks: [next], readerWaiting: true })
    }
    deliver(s, fast as ChunkRequest)
    // The window [5, 9) is all asked for; the reader still waits on chunk 5: `fast` takes it too.
    expect(s.plan()).toEqual([{ source: 'fast', chunks: [5], readerWaiting: true }])
    expect(s.fetchers(5)).toBe(2)
  })

  it('asks a second source for the awaited chunk only once its request has fallen behind the others', () => {
    // Sources alike: the awaited chunk's own source serves it first, and a second copy would take a
    // share of another source that its own chunks need (four 1 MiB/s sources gave a player 0.7 of 4 MiB/s).
    const reads = [5]
    const s = readScheduler(7, () => reads)
    s.addSource('a')
    s.addSource('b')
    const asked = s.plan()
    expect(asked.filter((request) => request.readerWaiting)).toEqual([
      { source: 'a', chunks: [5], readerWaiting: true },
      { source: 'b', chunks: [6], readerWaiting: true },
    ])
    deliver(s, asked.find((request) => request.chunks[0] === 6) as ChunkRequest)
    // b has delivered one chunk since 5 was asked of a: not behind yet.
    expect(s.plan()).toEqual([])
    expect(s.fetchers(5)).toBe(1)
    deliver(s, asked.find((request) => request.source === 'b' && !request.readerWaiting) as ChunkRequest)
    // Two: a has fallen behind, and b takes chunk 5 too.
    expect(s.plan()).toContainEqual({ source: 'b', chunks: [5], readerWaiting: true })
    expect(s.fetchers(5)).toBe(2)
  })

  it('with a reader waiting, queues its chunks behind at most one other request at a source', () => {
    // A player reading from the start, slower than the source: one chunk read for every two that
    // arrive. The source shares its turns among the requests open, a chunk each in turn, so every other
    // request open there while a reader's chunk is missing delays it.
    const chunks = 64
    let position = 0
    const s = scheduler(chunks, { perSource: 4, runChunks: 8, readPositions: () => [position] })
    s.addSource('a')
    /** Open requests; a reader's is one asked for chunks of its window. */
    let open: { request: ChunkRequest; next: number; readers: boolean }[] = []
    const inWindow = (index: number) => index >= position && index < position + 4
    const plan = () => {
      for (const request of s.plan()) open.push({ request, next: 0, readers: request.chunks.some(inWindow) })
      for (let index = position; index < Math.min(chunks, position + 4); index++) {
        if (s.isDone(index)) continue
        const behind = open.filter((o) => !o.readers).length
        expect(behind, `the reader's chunk ${index} is queued behind`).toBeLessThanOrEqual(1)
      }
    }
    plan()
    for (let step = 0; !s.complete; step++) {
      expect(step).toBeLessThan(10_000)
      const first = open[step % open.length] as (typeof open)[number]
      const index = first.request.chunks[first.next++] as number
      if (s.claim(index)) s.written(index)
      if (first.next === first.request.chunks.length) {
        open = open.filter((o) => o !== first)
        s.ended(first.request)
      }
      if (step % 2 === 1 && s.isDone(position) && position < chunks - 1) position++
      plan()
    }
  })

  it('a chunk whose write failed is missing again', () => {
    const s = scheduler(1, { perSource: 1 })
    s.addSource('a')
    const [request] = s.plan()
    expect(s.claim(0)).toBe(true)
    s.unclaim(0)
    s.ended(request as ChunkRequest)
    expect(s.complete).toBe(false)
    expect(s.plan()).toEqual([{ source: 'a', chunks: [0] }])
  })
})

type Behaviour = 'honest' | 'liar' | 'flaky'
type Open = { request: ChunkRequest; next: number }

/**
 * A download played against the scheduler: sources of every behaviour come and go, requests deliver
 * chunk by chunk in any interleaving, lie, break or are orphaned by a drop. Readers' chunks may go in
 * parts, whose lies show only once the chunk is whole (and then nobody can say whose part lied). The
 * invariants are checked after every step; at the end an honest source joins, and the download must
 * complete.
 */
function play(setup: {
  chunks: number
  done: boolean[]
  perSource: number
  runChunks: number
  sources: Behaviour[]
  /** Read positions of streaming readers; step action 10 moves the first (a seek). */
  reads?: number[]
  /** Parts a reader's chunk may be cut into, until an assembled chunk fails (then 1). */
  parts?: number
  steps: { action: number; pick: number; behaviour: Behaviour }[]
}) {
  const reads = [...(setup.reads ?? [])]
  let parts = setup.parts ?? 1
  const s = new ChunkScheduler({
    chunks: setup.chunks,
    done: (i) => setup.done[i] ?? false,
    perSource: setup.perSource,
    runChunks: setup.runChunks,
    readPositions: () => reads,
    splitParts: () => parts,
  })
  /** Chunks with a part from a liar among those in hand. */
  const tainted = new Set<number>()
  const behaviour = new Map<string, Behaviour>()
  const live = new Set<string>()
  const writes = new Map<number, number>()
  for (let i = 0; i < setup.chunks; i++) if (setup.done[i]) writes.set(i, 1)
  let open: Open[] = []
  let names = 0
  const add = (kind: Behaviour) => {
    const name = `s${names++}`
    behaviour.set(name, kind)
    live.add(name)
    s.addSource(name)
  }
  const drop = (name: string) => {
    live.delete(name)
    s.dropSource(name)
  }
  const end = (entry: Open) => {
    open = open.filter((o) => o !== entry)
    s.ended(entry.request)
  }

  /** While a reader reads, a source runs at most one request for the rest of the file. */
  const reading = () => reads.length > 0 && !s.complete
  const check = () => {
    for (const { request } of open) {
      expect(request.chunks.length).toBeLessThanOrEqual(setup.runChunks)
      request.chunks.forEach((index, k) => {
        if (k > 0) expect(index).toBe((request.chunks[k - 1] as number) + 1)
      })
    }
    const liveOpen = open.filter((o) => live.has(o.request.source))
    for (const name of live) {
      const mine = liveOpen.filter((o) => o.request.source === name)
      const rest = mine.filter((o) => !o.request.readerWaiting).length
      expect(rest).toBeLessThanOrEqual(reading() ? 1 : setup.perSource)
      expect(mine.filter((o) => o.request.readerWaiting).length).toBeLessThanOrEqual(setup.perSource)
      // One source is asked twice for a chunk only by a reader's request (a seek into its own stream).
      const asked = mine
        .filter((o) => !o.request.readerWaiting)
        .flatMap((o) => o.request.chunks.slice(o.next))
      expect(new Set(asked).size).toBe(asked.length)
    }
    for (let index = 0; index < setup.chunks; index++) {
      const asking = liveOpen.filter((o) => o.request.chunks.slice(o.next).includes(index))
      expect(asking.filter((o) => !o.request.part).length).toBeLessThanOrEqual(2)
      // A part, like a chunk, is asked of two sources at most.
      const partsAsked = asking.flatMap(({ request: { part } }) => (part ? [`${part.at}/${part.of}`] : []))
      for (const part of new Set(partsAsked))
        expect(partsAsked.filter((other) => other === part).length).toBeLessThanOrEqual(2)
      expect(writes.get(index) ?? 0).toBeLessThanOrEqual(1)
      // Every missing chunk is being asked for, unless no live source has a free slot.
      const freeSlot = [...live].some(
        (name) =>
          liveOpen.filter((o) => o.request.source === name && !o.request.readerWaiting).length <
          (reading() ? 1 : setup.perSource),
      )
      if (!s.isDone(index) && freeSlot) expect(s.fetchers(index)).toBeGreaterThan(0)
    }
  }

  const pump = () => {
    for (const request of s.plan()) {
      for (const index of request.chunks) expect(s.isDone(index)).toBe(false)
      open.push({ request, next: 0 })
    }
    check()
  }

  const deliverOne = (entry: Open) => {
    const index = entry.request.chunks[entry.next] as number
    entry.next++
    const kind = behaviour.get(entry.request.source)
    if (entry.request.part) {
      const arrival = s.partArrived(entry.request)
      if (arrival !== 'stale' && kind === 'liar') tainted.add(index)
      if (arrival === 'complete') {
        if (tainted.delete(index)) {
          // The whole chunk's hash is wrong: asked again, and whole from now on.
          s.splitFailed(index)
          parts = 1
        } else if (s.claim(index)) {
          s.written(index)
          writes.set(index, (writes.get(index) ?? 0) + 1)
        }
      }
      end(entry)
      return
    }
    if (kind === 'liar') {
      if (live.has(entry.request.source)) drop(entry.request.source)
      end(entry)
      return
    }
    if (s.claim(index)) {
      s.written(index)
      writes.set(index, (writes.get(index) ?? 0) + 1)
    }
    if (entry.next === entry.request.chunks.length) end(entry)
  }

  for (const kind of setup.sources) add(kind)
  pump()
  for (const { action, pick, behaviour: kind } of setup.steps) {
    if (s.complete) break
    const entry = open[pick % Math.max(1, open.length)]
    if (action < 6 && entry) deliverOne(entry)
    else if (action === 6 && entry) {
      // the stream broke: the downloader drops its source
      if (live.has(entry.request.source)) drop(entry.request.source)
      end(entry)
    } else if (action === 7 && live.size > 0) drop([...live][pick % live.size] as string)
    else if (action === 8) add(kind)
    else if (action === 10 && reads.length > 0) reads[0] = pick % setup.chunks
    else if (behaviour.get(entry?.request.source ?? '') === 'flaky' && entry) end(entry)
    pump()
  }
  // What is left is fetched from one honest source that stays.
  add('honest')
  pump()
  for (let guard = 0; !s.complete; guard++) {
    expect(guard).toBeLessThan(100_000)
    const entry = open.find((o) => behaviour.get(o.request.source) === 'honest') ?? open[0]
    expect(entry).toBeDefined()
    deliverOne(entry as Open)
    pump()
  }
  for (let index = 0; index < setup.chunks; index++) expect(writes.get(index)).toBe(1)
}

describe('ChunkScheduler, for any mix of sources', () => {
  it('asks for every chunk until it is written, writes none twice, asks no more than two at once', () => {
    const behaviour = fc.constantFrom<Behaviour>('honest', 'liar', 'flaky')
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }).chain((chunks) =>
          fc.record({
            chunks: fc.constant(chunks),
            done: fc.array(fc.boolean(), { minLength: chunks, maxLength: chunks }),
            perSource: fc.integer({ min: 1, max: 4 }),
            runChunks: fc.integer({ min: 1, max: 8 }),
            sources: fc.array(behaviour, { minLength: 0, maxLength: 5 }),
            reads: fc.array(fc.integer({ min: 0, max: chunks - 1 }), { maxLength: 2 }),
            parts: fc.integer({ min: 1, max: 4 }),
            steps: fc.array(
              fc.record({ action: fc.integer({ min: 0, max: 10 }), pick: fc.nat(), behaviour }),
              { maxLength: 200 },
            ),
          }),
        ),
        (setup) => play(setup),
      ),
      { numRuns: 300 },
    )
  })
})
