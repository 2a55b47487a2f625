/** One tunnel the relay carries: whose it is (a caller address), the bytes it moved (both ways) since it began, and how to cut it. */
export type ForwardedCall = {
  caller: string
  startedAt: number
  moved: number
  lastMovedAt: number
  cut: () => void
}

/** A call in which nothing moved for this long gives way to anyone's call once its peer is full. */
const IDLE_MS = 5_000

/** The most calls one caller holds to one peer while the peer has room: more than a downloader uses. */
export const callerCap = (maxStreams: number) => Math.max(1, Math.ceil(maxStreams / 4))

/**
 * The calls forwarded to one relayed peer (over its current link and those it replaced), by caller (an
 * account, or an address without one). A caller holds at most a quarter of the peer's calls; once the
 * peer's calls are all taken, a new call takes the place of another caller's call in which nothing
 * moved for IDLE_MS (the longest idle), or else of the slowest call of a caller holding more calls than
 * the new call's caller does. So no number of accounts shuts a caller out: it gets a call while any
 * caller holds more than it does, and more while others only sit on theirs.
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
      return `you already have ${held} tunnels to ${peer} through this relay; wait for one to end`
    }
    if (this.#calls.size >= maxStreams) {
      const victim = this.#victimFor(call.caller, held)
      if (!victim) return `this relay already carries ${maxStreams} tunnels to ${peer}; try again shortly`
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

  /** The longest idle call of another caller, else the slowest of a caller holding more than `held`. */
  #victimFor(caller: string, held: number): ForwardedCall | undefined {
    const now = Date.now()
    const rate = (call: ForwardedCall) => call.moved / Math.max(1, now - call.startedAt)
    let idlest: ForwardedCall | undefined
    let slowest: ForwardedCall | undefined
    for (const call of this.#calls) {
      if (call.caller === caller) continue
      if (now - call.lastMovedAt >= IDLE_MS) {
        if (!idlest || call.lastMovedAt <= idlest.lastMovedAt) idlest = call
      } else if (this.of(call.caller) > held && (!slowest || rate(call) <= rate(slowest))) {
        slowest = call
      }
    }
    return idlest ?? slowest
  }
}
