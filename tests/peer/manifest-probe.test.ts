import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { manifestHash } from '../../peer/src/content/manifest.ts'
import { MANIFEST_TIMEOUT_MS, probedVariants } from '../../peer/src/transfer/manifest-probe.ts'
import type { Connect, SourceLink, SourceReport } from '../../peer/src/transfer/source-pool.ts'

const chunkSize = 1024
const chunkHashes = [createHash('sha256').update('one').digest(), createHash('sha256').update('two').digest()]
const variant = (name: string, manifest: string, holders: string[]) => ({
  name,
  size: 2 * chunkSize,
  sha256: 'a'.repeat(64),
  chunkSize,
  manifest,
  sources: holders.map((username) => ({ username, url: `http://${username}.invalid`, key: null })),
})

/** Holders by name: `tarpit*` never answer (until the caller gives up), `liar*` send another manifest. */
const connect: Connect = ({ username }) => {
  const link: SourceLink = {
    manifest: (_sha256, signal) => {
      if (username.startsWith('tarpit'))
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
      const hashes = username.startsWith('liar') ? [...chunkHashes].reverse() : chunkHashes
      return Promise.resolve({ size: 2 * chunkSize, chunkSize, chunkHashes: hashes })
    },
    download: () => {
      throw new Error('a probe never downloads')
    },
    close: () => {},
  }
  return link
}

describe('probing the variants of a content for their manifest', () => {
  it('yields the variants a holder answers for first, in order, then the rest, each with why', async () => {
    const honest = manifestHash(chunkHashes)
    const variants = [
      variant('tarpitted', 'b'.repeat(64), ['tarpit1', 'tarpit2']),
      variant('forged', 'c'.repeat(64), ['liar1']),
      variant('true', honest, ['tarpit3', 'holder']),
      variant('also true', honest, ['holder2']),
    ]
    const unanswered: [string, SourceReport[]][] = []
    const order: string[] = []
    for await (const v of probedVariants(variants, {
      connect,
      signal: new AbortController().signal,
      unanswered: (v, holders) => unanswered.push([v.name, holders]),
    }))
      order.push(v.name)
    expect(order).toEqual(['true', 'also true', 'tarpitted', 'forged'])
    const reasons = Object.fromEntries(
      unanswered.map(([name, holders]) => [name, holders.map((h) => `${h.username}: ${h.dropped}`).sort()]),
    )
    expect(reasons).toEqual({
      tarpitted: [
        `tarpit1: sent no manifest within ${MANIFEST_TIMEOUT_MS / 1000} s`,
        `tarpit2: sent no manifest within ${MANIFEST_TIMEOUT_MS / 1000} s`,
      ],
      forged: ['liar1: sent a manifest that does not match the directory’s'],
    })
  }, 30_000)

  it('yields a lone variant without asking its holders: its download asks for the manifest anyway', async () => {
    let asked = 0
    const counting: Connect = (source) => {
      asked++
      return connect(source)
    }
    const order: string[] = []
    for await (const v of probedVariants([variant('only', manifestHash(chunkHashes), ['holder'])], {
      connect: counting,
      signal: new AbortController().signal,
      unanswered: () => {},
    }))
      order.push(v.name)
    expect(order).toEqual(['only'])
    expect(asked).toBe(0)
  })
})
