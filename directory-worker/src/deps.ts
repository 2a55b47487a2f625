import type { Context } from 'hono'
import type { Ed25519Signer, TokenService, VerifiedClaims } from './auth/tokens.ts'
import type { RequestMetrics } from './middleware/metrics.ts'
import type { IndexWriteSlots } from './services/index-write-slots.ts'
import type { CachedNetworkStats } from './services/network-stats.ts'
import type { Presence } from './services/presence.ts'
import type { SearchResults } from './services/search-results.ts'
import type { Settings } from './settings.ts'
import type { Database } from './store/database.ts'

/** Everything a handler needs from the outside world; the entries build it from their runtime's env. */
export type Deps = {
  db: Database
  settings: Settings
  /** Milliseconds since the epoch; injectable so tests can move time. */
  now: () => number
  /** One line per request and per unexpected error. */
  log: (line: string) => void
  /** Signs tokens; WebCrypto when not given (Workers), Node's own crypto on Node. */
  signer?: Ed25519Signer
  /** The request's client address as the runtime knows it (the socket's peer, CF-Connecting-IP). */
  clientAddress?: (c: Context<AppEnv>) => string | undefined
  /** Where leases live (Node: its memory; Workers: Durable Objects); the peers table when not given. */
  presence?: Presence
  /** D1 rows written so far (D1's meta.rows_written), where the database is D1: shown in /metrics. */
  storageRowsWritten?: () => number
}

export type AuthContext = { username: string; peerId: number; sessionId: string; viewer: boolean }

export type AppEnv = {
  Variables: {
    deps: Deps
    requestId: string
    auth: AuthContext
    /** Set instead of `auth` where the handler checks the session itself (requireSignedToken). */
    claims: VerifiedClaims
    tokens: TokenService
    metrics: RequestMetrics
    stats: CachedNetworkStats
    search: SearchResults
    presence: Presence
    indexWrites: IndexWriteSlots
  }
}
