import { sep } from 'node:path'
import { Code, ConnectError } from '@connectrpc/connect'
import type { ShareIndex } from '../content/share-index.ts'

/**
 * The inbox's byte budget: what it holds (as the share index knows it) plus what uploads in flight
 * have claimed. An upload claims its declared size before anything is stored, so concurrent uploads
 * cannot together pass the budget; the claim is given back once the file is kept (it is then counted
 * in the index) or dropped.
 */
export class InboxQuota {
  readonly #index: ShareIndex
  readonly #inbox: string
  readonly #limit: number
  #inFlight = 0

  constructor(index: ShareIndex, inboxDir: string, limitBytes: number) {
    this.#index = index
    this.#inbox = inboxDir.endsWith(sep) ? inboxDir : inboxDir + sep
    this.#limit = limitBytes
  }

  /** Claims `bytes` for one upload, or refuses it; the returned function gives the claim back. */
  claim(bytes: number): () => void {
    const used = this.stored() + this.#inFlight
    if (used + bytes > this.#limit) {
      throw new ConnectError(
        `the inbox is full: ${used} of its ${this.#limit} bytes are used or arriving, and this upload needs ${bytes}`,
        Code.ResourceExhausted,
      )
    }
    this.#inFlight += bytes
    let given = false
    return () => {
      if (given) return
      given = true
      this.#inFlight -= bytes
    }
  }

  stored(): number {
    let bytes = 0
    for (const file of this.#index.files) if (file.path.startsWith(this.#inbox)) bytes += file.size
    return bytes
  }
}
