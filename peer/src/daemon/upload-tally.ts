import type { SharedFile } from '../content/share-index.ts'
import type { DaemonEvents } from './daemon-events.ts'

/** A fetch of one content by one peer is over once none of its calls has come for this long. */
export const UPLOAD_QUIET_MS = 2000

type Tally = { username: string; file: SharedFile; bytes: number; timer: NodeJS.Timeout }

/**
 * Adds up the Download calls one peer makes for one content (a download is many calls, one per chunk
 * range) into one `upload-served` event, told once that peer has asked nothing more of it for a while.
 */
export class UploadTally {
  readonly #tallies = new Map<string, Tally>()
  readonly #events: DaemonEvents

  constructor(events: DaemonEvents) {
    this.#events = events
  }

  served = (served: { username: string; file: SharedFile; bytes: number }) => {
    const key = `${served.username}\u0000${served.file.sha256}`
    const tally = this.#tallies.get(key)
    if (tally) {
      tally.bytes += served.bytes
      tally.timer.refresh()
      return
    }
    const timer = setTimeout(() => this.#tell(key), UPLOAD_QUIET_MS)
    timer.unref()
    this.#tallies.set(key, { ...served, timer })
  }

  /** Tells what was served so far (the daemon is stopping). */
  flush() {
    for (const [key, tally] of this.#tallies) {
      clearTimeout(tally.timer)
      this.#tell(key)
    }
  }

  #tell(key: string) {
    const tally = this.#tallies.get(key)
    if (!tally) return
    this.#tallies.delete(key)
    this.#events.emit({
      type: 'upload-served',
      username: tally.username,
      name: tally.file.name,
      sha256: tally.file.sha256,
      bytes: tally.bytes,
    })
  }
}
