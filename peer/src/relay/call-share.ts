/** One call the relay forwards: whose it is, the bytes it moved (both ways) since it began, and how to cut it. */
export type ForwardedCall = { caller: string; startedAt: number; moved: number; cut: () => void }

/** The most calls one caller holds to one peer while the peer has room: more than a downloader uses. */
export const callerCap = (maxStreams: number) => Math.max(1, Math.ceil(maxStreams / 4))

/**
 * The calls forwarded to one relayed peer (over its current link and those it replaced), by caller (an
 * account, or an address without one). A caller holds at most a quarter of the peer's calls; once the
 * peer's calls are all taken, a caller holding fewer than another takes one of that other's, the
 * slowest (a trickle held to keep a slot goes first, a call moving bytes last). So no number of
 * accounts shuts a caller out: it always gets a call while any caller holds more than it does.
 */
export class PeerLoad {
  readonly #calls = new Set<ForwardedCall>()
  readonly #byCaller = new Map<string, number>()

  get streams(): number {
    return this.#calls.size
  }

  of(caller: string): number {
    return this.#byCaller.get(caller) ?? 0
  }

  /** Takes the call in (cutting another caller's when the peer is full), or says why not. */
  admit(call: ForwardedCall, maxStreams: number, peer: string): string | undefined {
    const held = this.of(call.caller)
    if (held >= callerCap(maxStreams)) {
      return `you already have ${held} calls to ${peer} through this relay; wait for one to end`
    }
    if (this.#calls.size >= maxStreams) {
      const victim = this.#victimFor(held)
      if (!victim) return `this relay already carries ${maxStreams} calls to ${peer}; try again shortly`
      this.end(victim)
      victim.cut()
    }
    this.#calls.add(call)
    this.#byCaller.set(call.caller, held + 1)
    return undefined
  }

  end(call: ForwardedCall) {
    if (!this.#calls.delete(call)) return
    const left = this.of(call.caller) - 1
    if (left > 0) this.#byCaller.set(call.caller, left)
    else this.#byCaller.delete(call.caller)
  }

  /** The slowest call of a caller holding more calls than `held`, if any. */
  #victimFor(held: number): ForwardedCall | undefined {
    const now = Date.now()
    const rate = (call: ForwardedCall) => call.moved / Math.max(1, now - call.startedAt)
    let victim: ForwardedCall | undefined
    for (const call of this.#calls) {
      if (this.of(call.caller) <= held) continue
      if (!victim || rate(call) <= rate(victim)) victim = call
    }
    return victim
  }
}
