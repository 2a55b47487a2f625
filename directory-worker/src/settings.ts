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

const settingsSchema = z.object({
  LEASE_SECONDS: seconds(60),
  TOKEN_TTL_SECONDS: seconds(900),
  READ_REQUIRES_AUTH: flag.default(false),
  MAX_FILES_PER_PEER: z.coerce.number().int().min(1).default(100_000),
  LOGIN_MAX_FAILURES: z.coerce.number().int().min(1).default(5),
  LOGIN_LOCK_SECONDS: seconds(60),
})

export type Settings = {
  leaseSeconds: number
  tokenTtlSeconds: number
  readRequiresAuth: boolean
  maxFilesPerPeer: number
  loginMaxFailures: number
  loginLockSeconds: number
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
    tokenTtlSeconds: s.TOKEN_TTL_SECONDS,
    readRequiresAuth: s.READ_REQUIRES_AUTH,
    maxFilesPerPeer: s.MAX_FILES_PER_PEER,
    loginMaxFailures: s.LOGIN_MAX_FAILURES,
    loginLockSeconds: s.LOGIN_LOCK_SECONDS,
  }
}
