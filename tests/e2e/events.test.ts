import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { subscribedFollower } from '../support/event-follower.ts'
import { startLyingPeer } from '../support/lying-peer.ts'
import { placeFile, until } from '../support/peer-process.ts'
import { startRelayProcess } from '../support/relay-process.ts'
import { useTestNetwork } from '../support/test-network.ts'

const MiB = 1024 * 1024
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

const network = useTestNetwork({ directoryEnv: { LEASE_SECONDS: '30' }, logOutAfterEach: true })

describe('peer events', () => {
  it('reports a completed and a failed download, the upload on the serving side, and the session, one JSON line each', async () => {
    const content = randomBytes(3 * MiB)
    // Served at 1 MiB/s, the download lasts about 3 s: long enough for progress events.
    const alice = await network.peer('ev-alice', { args: ['--max-upload-rate', '1M'] })
    placeFile(alice.dir, 'song.flac', content)
    await alice.waitFor(/published changes: \+1/)
    const bob = await network.peer('ev-bob')
    const bobEvents = await subscribedFollower(bob, network.stateRoot)
    const aliceEvents = await subscribedFollower(alice, network.stateRoot)

    const got = await bob.cli(['get', sha(content)])
    expect(got.code, got.stderr).toBe(0)
    const started = await bobEvents.waitFor((e) => e.type === 'download-started', 'download-started')
    expect(started).toMatchObject({ name: 'song.flac', sha256: sha(content), size: content.length })
    const completed = await bobEvents.waitFor((e) => e.type === 'download-completed', 'download-completed')
    const progress = bobEvents.events().filter((e) => e.type === 'download-progress')
    expect(progress.length).toBeGreaterThan(0)
    expect(progress[0]).toMatchObject({ name: 'song.flac', sha256: sha(content), size: content.length })
    // At most once a second (the daemon's clock stamps them, to the millisecond).
    const times = progress.map((e) => Date.parse(e.time))
    const gaps = times.slice(1).map((time, i) => time - (times[i] ?? 0))
    expect(Math.min(...gaps, Number.POSITIVE_INFINITY)).toBeGreaterThanOrEqual(999)
    expect(completed).toMatchObject({
      name: 'song.flac',
      sha256: sha(content),
      size: content.length,
      path: join(bob.dir, 'song.flac'),
      sources: ['ev-alice'],
    })
    expect(completed.seconds).toBeGreaterThan(0)
    const served = await aliceEvents.waitFor((e) => e.type === 'upload-served', 'upload-served')
    expect(served).toMatchObject({ username: 'ev-bob', name: 'song.flac', sha256: sha(content) })
    expect(served.bytes).toBe(content.length)

    // A source whose every chunk is false: nothing verifies, the download fails.
    const forged = randomBytes(MiB)
    const liar = await startLyingPeer({
      directoryUrl: network.directoryUrl,
      username: 'ev-liar',
      content: forged,
      name: 'forged.bin',
      corruptChunks: [0],
    })
    network.track({ stop: () => liar.close() })
    const refused = await bob.cli(['get', sha(forged)])
    expect(refused.code).not.toBe(0)
    const failed = await bobEvents.waitFor((e) => e.type === 'download-failed', 'download-failed')
    expect(failed).toMatchObject({ name: 'forged.bin', sha256: sha(forged) })
    expect(failed.reason).toMatch(/ev-liar/)

    for (const follower of [bobEvents, aliceEvents]) {
      expect(await follower.interrupt()).toBe(0)
      for (const line of follower.lines()) {
        const event = JSON.parse(line)
        expect(typeof event.type).toBe('string')
        expect(Number.isNaN(Date.parse(event.time))).toBe(false)
      }
    }
  })

  it('goes on downloading while a follower has stopped reading', async () => {
    const content = randomBytes(16 * MiB)
    const alice = await network.peer('ev-carol')
    placeFile(alice.dir, 'big.bin', content)
    await alice.waitFor(/published changes: \+1/)
    const bob = await network.peer('ev-dave')
    const follower = await subscribedFollower(bob, network.stateRoot)
    follower.pause()
    const begun = performance.now()
    const got = await bob.cli(['get', sha(content)], { timeoutMs: 60_000 })
    const seconds = (performance.now() - begun) / 1000
    expect(got.code, got.stderr).toBe(0)
    expect(sha(readFileSync(join(bob.dir, 'big.bin')))).toBe(sha(content))
    console.log(`16 MiB fetched in ${seconds.toFixed(2)} s while the events follower was stopped`)
    // Once it reads again it hears the download, then stops.
    follower.resume()
    await follower.waitFor((e) => e.type === 'download-completed', 'download-completed')
    expect(await follower.interrupt()).toBe(0)
  })
})

describe('peer events and the relay link', () => {
  it('reports the link to the relay lost and made again', async () => {
    const relay = network.track(
      await startRelayProcess({ host: '127.0.0.1', directoryUrl: network.directoryUrl }),
    )
    const peer = await network.peer('ev-relayed', { args: ['--relay', relay.url] })
    // Linked first: a relay killed before the daemon registered leaves nothing to lose (the daemon
    // only tries to register again and again, up and down in the directory).
    await peer.waitFor(/registered with relay/)
    const follower = await subscribedFollower(peer, network.stateRoot)
    await relay.stop('SIGKILL')
    await follower.waitFor((e) => e.type === 'session' && e.relay === 'lost', 'relay lost')
    network.track(
      await startRelayProcess({ host: '127.0.0.1', directoryUrl: network.directoryUrl, port: relay.port }),
    )
    // Made again: a `linked` after the `lost`.
    await until(async () => {
      const relayed = follower.events().map((e) => e.relay)
      return relayed.lastIndexOf('linked') > relayed.indexOf('lost')
    }, 'the relay link made again')
    expect(await follower.interrupt()).toBe(0)
  })
})

describe('peer start --on-complete', () => {
  it('gives the hook the file name in its environment only: shell metacharacters in it run nothing', async () => {
    const hookDir = mkdtempSync(join(tmpdir(), 'peerdir-hook-'))
    const name = `$(touch pwned) it's "a" song; touch pwned2 \`touch pwned3\`.flac`
    const content = randomBytes(MiB)
    const alice = await network.peer('hook-alice')
    placeFile(alice.dir, name, content)
    await alice.waitFor(/published changes: \+1/)
    const hook = `cd '${hookDir}' && printf '%s\\n' "$PEERDIR_PATH" "$PEERDIR_NAME" "$PEERDIR_SHA256" "$PEERDIR_SIZE" > seen.txt`
    const bob = await network.peer('hook-bob', { args: ['--on-complete', hook] })
    const got = await bob.cli(['get', sha(content)])
    expect(got.code, got.stderr).toBe(0)
    const seen = join(hookDir, 'seen.txt')
    await until(
      async () => existsSync(seen) && readFileSync(seen, 'utf8').split('\n').length >= 5,
      'the hook',
    )
    expect(readFileSync(seen, 'utf8')).toBe(
      `${join(bob.dir, name)}\n${name}\n${sha(content)}\n${content.length}\n`,
    )
    for (const trap of ['pwned', 'pwned2', 'pwned3']) expect(existsSync(join(hookDir, trap))).toBe(false)
  })
})
