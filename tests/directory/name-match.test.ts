import type { InStatement } from '@libsql/client'
import { afterEach, describe, expect, it } from 'vitest'
import { ftsQuery, queryWords, wordsFtsQuery } from '../../directory-worker/src/store/name-match.ts'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  type TestDirectory,
} from '../support/directory-app.ts'

describe('ftsQuery', () => {
  it('asks for a short key as one phrase, quotes and all', () => {
    expect(ftsQuery('say "hi" - 01.mp3')).toBe('"say ""hi"" - 01.mp3"')
  })

  it('asks for a long key by the two of its trigrams fewest sampled names hold', () => {
    const key = 'jungle meadow - jungle 8485.mkv'
    const sample = ['jungle meadow - jungle 1234.mkv', 'jungle 84', '85.mkv']
    // "848" and "485" are in none of them; every other trigram of the key is in at least one.
    expect(ftsQuery(key, sample)).toBe('"848" AND "485"')
  })

  it('asks for two trigrams of the key even with no sample to tell them by', () => {
    const query = ftsQuery('a name longer than twenty-four characters.flac')
    expect(query).toMatch(/^"[^"]{3}" AND "[^"]{3}"$/)
    for (const trigram of query.match(/"([^"]{3})"/g) ?? []) {
      expect('a name longer than twenty-four characters.flac').toContain(trigram.slice(1, -1))
    }
  })
})

describe('the words of a query', () => {
  it('are split at spaces and /, each once, none another word holds', () => {
    expect(queryWords('nightjar ensemble/songs  from nightjar night')).toEqual([
      'nightjar',
      'ensemble',
      'songs',
      'from',
    ])
  })

  it('are asked for by the rarest trigram of each, the two rarest of those', () => {
    const sample = ['ocean bravo - kilo 1.mp3', 'ocean delta - echo 2.mkv', 'zephyr ocean - alpha 3.flac']
    // No sampled name holds "kestrel": one of its trigrams, then ocean's rarest ("oce" and "cea" are in all).
    const query = wordsFtsQuery(['kestrel', 'ocean'], sample)
    expect(query).toMatch(/^"(kes|est|str|tre|rel)" AND "(oce|cea|ean)"$/)
  })
})

/** A test directory that keeps every statement whose SQL holds `marker`, as sent. */
function recordingDirectory(marker: string) {
  const sent: Exclude<InStatement, string>[] = []
  const directory = createTestDirectory({}, async (statement: InStatement) => {
    if (typeof statement !== 'string' && statement.sql.includes(marker)) sent.push(statement)
  })
  return { directory, sent }
}

describe('a long query in the substring stage', () => {
  let directory: TestDirectory | undefined
  afterEach(() => directory?.close())

  it('walks the trigram lists of its rare parts, not of the ones in most names', async () => {
    const recording = recordingDirectory('MATCH')
    directory = recording.directory
    const token = await login(directory, 'alice')
    const long = 'Harbor Lights - Live at the Hall 7093.flac'
    const common = Array.from({ length: 30 }, (_, i) =>
      fileEntry(`Harbor Lights - Live at the Park ${i}.flac`),
    )
    await publish(directory, token, [...common, fileEntry(`bootleg ${long}`)])
    const response = await directory.request(`/v1/search?q=${encodeURIComponent(long)}`)
    const { results } = (await response.json()) as { results: { name: string }[] }
    expect(results.map((r) => r.name)).toEqual([`bootleg ${long}`])
    // The whole query's stage (the first after the prefix one): both trigrams from the part only the
    // wanted name has (the old query asked for its two ends, "Harbor L" and "093.flac", whose
    // trigrams are in every name). The word stages after it ask for each word.
    // The first MATCH argument of the first statement that has one: the whole query's stage.
    const matches = recording.sent.map((statement) =>
      String((statement.args as unknown[]).find((arg) => typeof arg === 'string' && arg.startsWith('"'))),
    )
    const trigrams = (matches[0]?.match(/"([^"]{3})"/g) ?? []).map((quoted) => quoted.slice(1, -1))
    expect(trigrams).toHaveLength(2)
    for (const trigram of trigrams) {
      expect(common.some((file) => file.name.toLowerCase().includes(trigram))).toBe(false)
    }
  })
})

describe('the exact and prefix stages', () => {
  let directory: TestDirectory | undefined
  afterEach(() => directory?.close())

  it('read the name index only, never a table row per candidate', async () => {
    const recording = recordingDirectory('WITH exact')
    directory = recording.directory
    const token = await login(directory, 'alice')
    await publish(directory, token, [fileEntry('harbor lights.flac'), fileEntry('harbor lights live.flac')])
    const response = await directory.request('/v1/search?q=harbor')
    expect(((await response.json()) as { results: unknown[] }).results).toHaveLength(2)
    const [stages] = recording.sent
    if (!stages) throw new Error('no stages statement sent')
    const plan = await directory.db.execute({ sql: `EXPLAIN QUERY PLAN ${stages.sql}`, args: stages.args })
    const steps = plan.rows.map((row) => String(row.detail)).filter((step) => /\bf\b/.test(step))
    expect(steps).toHaveLength(2)
    for (const step of steps) expect(step).toMatch(/^SEARCH f USING COVERING INDEX files_name \(name_key/)
  })
})
