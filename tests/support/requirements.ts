import { spawnSync } from 'node:child_process'

/**
 * Tests that need something of the machine (Chromium, tmux, faketime, openssl, root) skip with one line
 * saying what is missing. With REQUIRE_ALL=1 (or REQUIRE_<WHAT>=1, e.g. REQUIRE_BROWSER=1), as `.ci/run`
 * sets, a missing requirement fails the test file instead, so nothing skips on CI.
 *
 * `unavailable` is why the requirement cannot be met here, or undefined when it can. Answers whether the
 * tests that need it must skip.
 */
export function mustSkip(what: string, unavailable: string | undefined): boolean {
  if (unavailable === undefined) return false
  const required = process.env.REQUIRE_ALL === '1' || process.env[`REQUIRE_${what}`] === '1'
  if (required) throw new Error(`REQUIRE_${what}: ${unavailable}`)
  console.warn(`SKIPPED (set REQUIRE_${what}=1 to fail instead): ${unavailable}`)
  return true
}

/** Why `command args` cannot run here (with the package that provides it), or undefined when it can. */
export function commandUnavailable(command: string, args: string[], debianPackage: string) {
  const { status, error } = spawnSync(command, args, { stdio: 'ignore' })
  if (status === 0) return undefined
  return `${command} ${error ? 'is not installed' : 'does not work here'} (apt-get install ${debianPackage})`
}
