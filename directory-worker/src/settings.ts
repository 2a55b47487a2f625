import { z } from 'zod'

const flag = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', ''])])
  .transform((value) => value === true || value === 'true' || value === '1' || value === 'yes')

const seconds = (fallback: number) =>
  z.coerce
    .number()
    .int()
    .min(1)
    .max(86_400 * 30)
    .default(fallback)

const secret = z.string().min(16, 'must be at least 16 characters (e.g. openssl rand -hex 32)')

const settingsSchema = z.object({
  LEASE_SECONDS: seconds(60),
  LEASE_SLACK_SECONDS: z.coerce.number().int().min(0).max(86_400).default(0),
  TOKEN_TTL_SECONDS: seconds(900),
  READ_REQUIRES_AUTH: flag.default(false),
  MAX_FILES_PER_PEER: z.coerce.number().int().min(1).default(100_000),
  INDEX_WRITES_IN_FLIGHT: z.coerce.number().int().min(1).max(64).default(2),
  LOGIN_MAX_FAILURES: z.coerce.number().int().min(1).default(5),
  LOGIN_MAX_FAILURES_PER_NAME: z.coerce.number().int().min(1).optional(),
  LOGIN_LOCK_SECONDS: seconds(60),
  REGISTRATION: z.enum(['open', 'closed']).optional(),
  ADMIN_TOKEN: secret.optional(),
  METRICS_TOKEN: secret.optional(),
  TRUST_PROXY: flag.default(false),
})

export type Settings = {
  leaseSeconds: number
  /**
   * How much longer than a lease a heartbeat may store, so that the next heartbeats need not write:
   * a heartbeat writes only when the stored lease would end within LEASE_SECONDS. A peer that stops
   * beating is down LEASE_SECONDS to LEASE_SECONDS + this after its last heartbeat; lastSeen is that
   * coarse too. 0: every heartbeat writes (on D1 two rows, billed per row).
   */
  leaseSlackSeconds: number
  tokenTtlSeconds: number
  readRequiresAuth: boolean
  maxFilesPerPeer: number
  /** Index writes of the largest body taken at once (smaller ones take their share); more get 429. */
  indexWritesInFlight: number
  /** Checked logins per window for one name from one address. */
  loginMaxFailures: number
  /** Checked logins per window for one name from all addresses it has not logged in from before. */
  loginMaxFailuresPerName: number
  loginLockSeconds: number
  /** closed: only the operator makes accounts (`peerdir-directory users`, the admin calls). */
  registration: 'open' | 'closed'
  /** The bearer secret of the /v1/admin calls; without it they are off. */
  adminToken: string | undefined
  /** The bearer secret /metrics asks for; without it /metrics is open unless reads require auth. */
  metricsToken: string | undefined
  /** Node behind a reverse proxy: the client is the last X-Forwarded-For entry, not the socket's peer. */
  trustProxy: boolean
}

/** Reads the directory's settings from environment variables (Node's process.env or a Worker's env). */
export function parseSettings(env: Record<string, unknown>): Settings {
  const present = Object.fromEntries(
    Object.keys(settingsSchema.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  )
  const parsed = settingsSchema.safeParse(present)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new Error(`Invalid setting ${String(issue?.path[0])}: ${issue?.message}`)
  }
  const s = parsed.data
  return {
    leaseSeconds: s.LEASE_SECONDS,
    leaseSlackSeconds: s.LEASE_SLACK_SECONDS,
    tokenTtlSeconds: s.TOKEN_TTL_SECONDS,
    readRequiresAuth: s.READ_REQUIRES_AUTH,
    maxFilesPerPeer: s.MAX_FILES_PER_PEER,
    indexWritesInFlight: s.INDEX_WRITES_IN_FLIGHT,
    loginMaxFailures: s.LOGIN_MAX_FAILURES,
    loginMaxFailuresPerName: s.LOGIN_MAX_FAILURES_PER_NAME ?? 10 * s.LOGIN_MAX_FAILURES,
    loginLockSeconds: s.LOGIN_LOCK_SECONDS,
    // Members-only reads mean nothing if anyone may become a member by logging in.
    registration: s.REGISTRATION ?? (s.READ_REQUIRES_AUTH ? 'closed' : 'open'),
    adminToken: s.ADMIN_TOKEN,
    metricsToken: s.METRICS_TOKEN,
    trustProxy: s.TRUST_PROXY,
  }
}
