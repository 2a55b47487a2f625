import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { sleepUntil, until } from '../support/peer-process.ts'
import { commandUnavailable, mustSkip } from '../support/requirements.ts'
import { useTestNetwork } from '../support/test-network.ts'

/**
 * Peers whose clocks disagree with the directory's by a minute, for real: each daemon runs under
 * libfaketime (Debian's faketime; .ci/run installs it), one a minute ahead, one a minute behind.
 * Leases, tokens and transfers must not care.
 */
const noFaketime = mustSkip('FAKETIME', commandUnavailable('faketime', ['-f', '+0s', 'true'], 'faketime'))

const LEASE_SECONDS = 6
const network = useTestNetwork({ directoryEnv: { LEASE_SECONDS: String(LEASE_SECONDS) } })
const content = randomBytes(3 * 1024 * 1024 + 5)
const contentSha = createHash('sha256').update(content).digest('hex')
const skewed = (offset: string) => ({ wrap: ['faketime', '-f', offset] })

describe('clocks a minute apart', () => {
  it.skipIf(noFaketime)(
    'keeps both peers up past their lease, and one downloads from the other, verified',
    async () => {
      const ahead = await network.peer('clock-ahead', skewed('+60s'))
      const behind = await network.peer('clock-behind', skewed('-60s'))
      writeFileSync(join(ahead.dir, 'sundial.bin'), content)
      await ahead.waitFor(/published changes: \+1/)

      // Up at every look for two whole leases: their heartbeats, timed by their own clocks, kept them so.
      const twoLeasesLater = Date.now() + 2 * LEASE_SECONDS * 1000
      while (Date.now() < twoLeasesLater) {
        const peers = (await (await fetch(`${network.directoryUrl}/v1/peers`)).json()) as {
          peers: { username: string; state: string }[]
        }
        const states = Object.fromEntries(peers.peers.map((p) => [p.username, p.state]))
        expect(states).toMatchObject({ 'clock-ahead': 'up', 'clock-behind': 'up' })
        await sleepUntil(Date.now() + 500)
      }

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
