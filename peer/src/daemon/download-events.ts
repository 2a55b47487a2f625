import type { Transfer } from '../transfer/transfer.ts'
import type { Result } from '../wire/directory-client.ts'
import type { DaemonEvents, DownloadFacts } from './daemon-events.ts'

/** `download-progress` at most this often per download. */
export const PROGRESS_EVERY_MS = 1000

const factsOf = (variant: Result): DownloadFacts => ({
  name: variant.name,
  sha256: variant.sha256,
  size: variant.size,
})

/**
 * Tells the daemon's events what one transfer does, from its own events: started once (whichever
 * variant it tries first), progress at most once a second, each source's queue place as it changes,
 * then completed or failed.
 */
export async function reportTransfer(transfer: Transfer, events: DaemonEvents) {
  let started = false
  let lastProgress = 0
  for await (const event of transfer.events(new AbortController().signal)) {
    if (event.type === 'started' && !started) {
      started = true
      events.emit({ type: 'download-started', ...factsOf(event.variant) })
    } else if (event.type === 'progress' && started) {
      const now = performance.now()
      if (now - lastProgress < PROGRESS_EVERY_MS) continue
      lastProgress = now
      const { progress } = event
      events.emit({
        type: 'download-progress',
        ...factsOf(progress.variant),
        doneBytes: progress.doneBytes,
        activeSources: progress.activeSources,
      })
    } else if (event.type === 'sourceQueued' && started) {
      events.emit({
        type: 'download-queued',
        ...factsOf(transfer.variant),
        queuedAt: event.source.username,
        queuePosition: event.place,
      })
    } else if (event.type === 'finished') {
      const { finished } = event
      events.emit({
        type: 'download-completed',
        ...factsOf(finished.variant),
        path: finished.path,
        seconds: finished.seconds,
        sources: [...new Set(finished.sources.filter((s) => s.bytes > 0).map((s) => s.username))],
      })
    } else if (event.type === 'failed') {
      const reason = event.error instanceof Error ? event.error.message : String(event.error)
      events.emit({ type: 'download-failed', ...factsOf(transfer.variant), reason })
    }
  }
}
