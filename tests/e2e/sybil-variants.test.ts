import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha } from '../support/directory-app.ts'
import { postFrom } from '../support/directory-process.ts'
import { listen } from '../support/ports.ts'
import { useTestNetwork } from '../support/test-network.ts'

/**
 * Accounts are free (open registration): an attacker makes as many as it likes from a handful of
 * addresses, long before the honest holder's, and has each publish the sha256 of someone else's
 * content with a manifest of its own, its URL a tarpit that accepts connections and never answers.
 * With the honest holder up, `peer get <sha256>` must still end with the content, and the flood must
 * cost it a probe's timeout, not the transfer's stall timeout per holder.
 */
const network = useTestNetwork({ directoryEnv: { LEASE_SECONDS: '600' } })

/** Four networks (127.9-12.0.0/24): a handful of addresses. */
const ATTACKER_ADDRESSES = ['127.9.0.1', '127.10.0.1', '127.11.0.1', '127.12.0.1']
const MiB = 1024 * 1024

const held = new Set<Socket>()
const tarpit = createServer((socket) => {
  held.add(socket)
  socket.on('error', () => {})
  socket.on('close', () => held.delete(socket))
})
let tarpitUrl = ''
/** Sleeper accounts' tokens by the flood they belong to, all made before the honest holder's account. */
const sleepers = new Map<number, string[]>()

beforeAll(async () => {
  tarpitUrl = `http://127.0.0.1:${await listen(tarpit)}`
  for (const accounts of [16, 64]) {
    const tokens: string[] = []
    for (let i = 0; i < accounts; i++) {
      const address = ATTACKER_ADDRESSES[i % ATTACKER_ADDRESSES.length] as string
      const answer = await postFrom(address, `${network.directoryUrl}/v1/login`, {
        username: `sleeper${accounts}-${i}`,
        password: 'a sleeper password',
        url: tarpitUrl,
      })
      expect(answer.status).toBe(200)
      tokens.push(answer.body.token as string)
    }
    sleepers.set(accounts, tokens)
  }
}, 120_000)

afterAll(async () => {
  for (const socket of held) socket.destroy()
  await new Promise((resolve) => tarpit.close(resolve))
})

describe('a flood of accounts publishing a sha256 with bogus manifests', () => {
  for (const accounts of [16, 64]) {
    it(`cannot stop peer get <sha256> from the honest holder with ${accounts} accounts from 4 addresses`, async () => {
      const content = randomBytes(3 * MiB + 17)
      const contentSha = createHash('sha256').update(content).digest('hex')
      const name = `wanted-${accounts}.bin`
      const holder = await network.peer(`holder${accounts}`)
      writeFileSync(join(holder.dir, name), content)
      await holder.waitFor(/published changes: \+1/)
      for (const [i, token] of (sleepers.get(accounts) ?? []).entries()) {
        const bogus = {
          name,
          size: content.length,
          sha256: contentSha,
          chunkSize: MiB,
          manifest: sha(`bogus ${accounts} ${i}`),
        }
        const put = await fetch(`${network.directoryUrl}/v1/index`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ files: [bogus] }),
        })
        expect(put.status).toBe(200)
        // A lease ending after the honest holder's: ties on holders used to go to the later lease.
        const beat = await fetch(`${network.directoryUrl}/v1/heartbeat`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        })
        expect(beat.status).toBe(200)
      }
      const fetcher = await network.peer(`fetcher${accounts}`)
      const started = performance.now()
      const got = await fetcher.cli(['get', contentSha, '--json'])
      const seconds = (performance.now() - started) / 1000
      expect(got.code, got.stderr).toBe(0)
      expect(readFileSync(join(fetcher.dir, name)).equals(content)).toBe(true)
      const result = JSON.parse(got.stdout) as {
        bytesPerSource: Record<string, number>
        dropped: { username: string; reason: string }[]
      }
      expect(result.bytesPerSource[holder.name]).toBe(content.length)
      // The variants ahead of the honest one were probed and put aside, each holder saying why.
      for (const dropped of result.dropped.filter((d) => d.username.startsWith('sleeper')))
        expect(dropped.reason).toMatch(/sent no manifest within 5 s/)
      console.log(`${accounts} sleeper accounts from 4 addresses: peer get took ${seconds.toFixed(1)} s`)
    }, 180_000)
  }
})

describe('a squatter publishing a content under a name honest peers use', () => {
  it('does not stop peer get <name>: it takes the content most live peers hold and says so', async () => {
    const content = randomBytes(MiB + 5)
    const contentSha = createHash('sha256').update(content).digest('hex')
    const name = 'anthem.flac'
    for (const holderName of ['anthem1', 'anthem2']) {
      const holder = await network.peer(holderName)
      writeFileSync(join(holder.dir, name), content)
      await holder.waitFor(/published changes: \+1/)
    }
    const squatter = await postFrom('127.9.0.1', `${network.directoryUrl}/v1/login`, {
      username: 'squatter',
      password: 'a squatter password',
      url: tarpitUrl,
    })
    expect(squatter.status).toBe(200)
    const squatted = {
      name,
      size: 4242,
      sha256: sha('squatted'),
      chunkSize: MiB,
      manifest: sha('its manifest'),
    }
    const put = await fetch(`${network.directoryUrl}/v1/index`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${squatter.body.token}` },
      body: JSON.stringify({ files: [squatted] }),
    })
    expect(put.status).toBe(200)
    const fetcher = await network.peer('anthem-fetcher')
    const got = await fetcher.cli(['get', name, '--json'])
    expect(got.code, got.stderr).toBe(0)
    const result = JSON.parse(got.stdout) as { sha256: string; choice: string }
    expect(result.sha256).toBe(contentSha)
    expect(result.choice).toBe(
      `2 contents are named "${name}"; took ${contentSha}, held by 2 live peers (the next by 1)`,
    )
    expect(readFileSync(join(fetcher.dir, name)).equals(content)).toBe(true)
  }, 120_000)
})
