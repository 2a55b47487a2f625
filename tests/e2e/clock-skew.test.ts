import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { heartbeatsSeen } from '../support/heartbeats.ts'
import { until } from '../support/peer-process.ts'
import { commandUnavailable, mustSkip } from '../support/requirements.ts'
import { useTestNetwork } from '../support/test-network.ts'

/**
 * Peers whose clocks disagree with the directory's by a minute, for real: each daemon runs under
 * libfaketime (Debian's faketime; .ci/run installs it), one a minute ahead, one a minute behind.
 * Leases, tokens and transfers must not care.
 *
 * libfaketime makes a semaphore and a shared memory segment in /dev/shm for each process it runs in,
 * and removes them when the process exits, not when it is killed: the daemons are stopped with SIGTERM
 * (logOutAfterEach), never -9, and the library is preloaded directly, not through the `faketime`
 * command, which is one more process to kill. Killed, they left 204 segments after a day of runs.
 */
const libfaketime = [
  ...readdirSync('/usr/lib').map((dir) => `/usr/lib/${dir}/faketime`), // Debian's multiarch folders
  ...['/usr/lib/faketime', '/usr/lib64/faketime', '/usr/local/lib/faketime'],
]
  .map((dir) => `${dir}/libfaketime.so.1`)
  .find((path) => existsSync(path))
const noFaketime = mustSkip(
  'FAKETIME',
  libfaketime
    ? commandUnavailable('env', [`LD_PRELOAD=${libfaketime}`, 'FAKETIME=+0s', 'true'], 'faketime')
    : 'libfaketime is not installed (apt-get install faketime)',
)

const LEASE_SECONDS = 12
const network = useTestNetwork({
  directoryEnv: { LEASE_SECONDS: String(LEASE_SECONDS) },
  logOutAfterEach: true,
})
const content = randomBytes(3 * 1024 * 1024 + 5)
const contentSha = createHash('sha256').update(content).digest('hex')
const skewed = (offset: string) => ({ wrap: ['env', `LD_PRELOAD=${libfaketime}`, `FAKETIME=${offset}`] })

// After the network's afterEach has stopped them: nothing of libfaketime's is left behind for them.
const skewedPids: number[] = []
afterAll(() => {
  const left = skewedPids.flatMap((pid) =>
    [`/dev/shm/faketime_shm_${pid}`, `/dev/shm/sem.faketime_sem_${pid}`].filter((path) => existsSync(path)),
  )
  expect(left).toEqual([])
})

describe('clocks a minute apart', () => {
  it.skipIf(noFaketime)(
    'keeps both peers up past their lease, and one downloads from the other, verified',
    async () => {
      const ahead = await network.peer('clock-ahead', skewed('+60s'))
      const behind = await network.peer('clock-behind', skewed('-60s'))
      skewedPids.push(ahead.child.pid ?? 0, behind.child.pid ?? 0)
      writeFileSync(join(ahead.dir, 'sundial.bin'), content)
      await ahead.waitFor(/published changes: \+1/)

      // Three heartbeats of each taken by the directory, a whole lease's worth, up at every look: timed
      // by their own clocks, they renewed their leases in time. The lease outlasts a heartbeat period
      // (a third of it) by far, so a paused machine cannot take a peer down between two.
      await heartbeatsSeen(network.directoryUrl, ['clock-ahead', 'clock-behind'], 3)

      // The one behind presents its token to the one ahead, which checks it by its own clock.
      await until(async () => (await behind.cli(['search', 'sundial'])).code === 0, 'the file to be found')
      const got = await behind.cli(['get', contentSha, '--json'])
      expect(got.code, got.stderr).toBe(0)
      expect(readFileSync(join(behind.dir, 'sundial.bin')).equals(content)).toBe(true)
      // And the other way round, now that the one behind holds it too.
      await ahead.cli(['index'])
      const back = await ahead.cli(['get', contentSha, '--json', '--out', join(ahead.dir, 'copy')])
      expect(back.code, back.stderr).toBe(0)
      expect(JSON.parse(back.stdout).bytesPerSource).toEqual({ 'clock-behind': content.length })
      expect(readFileSync(join(ahead.dir, 'copy', 'sundial.bin')).equals(content)).toBe(true)
    },
  )
})
