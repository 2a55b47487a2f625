// Fills a directory database with synthetic peers and files, as fast as the store allows.
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Client, createClient } from '@libsql/client'
import { hashPassword } from '../../directory-worker/src/auth/passwords.ts'
import { replaceIndex } from '../../directory-worker/src/store/index-replace.ts'
import { migrate } from '../../directory-worker/src/store/migrations.ts'
import { networkStats } from '../../directory-worker/src/store/peers.ts'

const words = [
  'alpha',
  'bravo',
  'cosmic',
  'delta',
  'echo',
  'foxtrot',
  'golden',
  'harbor',
  'island',
  'jungle',
  'kilo',
  'lunar',
  'meadow',
  'night',
  'ocean',
  'prism',
  'quartz',
  'river',
  'solar',
  'tango',
  'umbra',
  'velvet',
  'winter',
  'xenon',
  'yellow',
  'zephyr',
]
const exts = ['mp3', 'flac', 'mkv', 'pdf', 'iso', 'epub', 'zip', 'ogg']

/** Folder words, apart from the names' so a name query means what it meant before folders. */
const folderWords = [
  'nightjar',
  'ensemble',
  'harrow',
  'lane',
  'copper',
  'kestrel',
  'orchard',
  'lantern',
  'thistle',
  'marble',
  'saffron',
  'hollow',
  'bramble',
  'cinder',
  'willow',
  'granite',
  'heron',
  'juniper',
  'ember',
  'falcon',
  'garnet',
  'indigo',
  'amber',
  'basalt',
  'cobalt',
  'dahlia',
  'fennel',
  'glacier',
  'hazel',
  'ivory',
  'larch',
  'mistral',
]
const shelves = ['Music', 'Films', 'Books', 'Software', 'Podcasts', 'Series']
const parts = ['Disc 1', 'Disc 2', 'Season 1', 'Season 2', 'Extras', 'Part 3']

/**
 * A share's folders as people keep them, four deep: `Music/Kestrel Orchard/Saffron Lane Hollow
 * (1997)/Disc 2`; files come in folders of about a dozen. Its own generator, so the names of a seed
 * are the ones they were before there were folders.
 */
export function folderPaths(seed = 11) {
  const random = seededRandom(seed)
  const word = () => {
    const w = random.pick(folderWords)
    return `${w.slice(0, 1).toUpperCase()}${w.slice(1)}`
  }
  let left = 0
  let current = ''
  return () => {
    if (left-- <= 0) {
      left = 8 + Math.floor(random.next() * 8)
      const year = 1960 + Math.floor(random.next() * 64)
      current = `${random.pick(shelves)}/${word()} ${word()}/${word()} ${word()} ${word()} (${year})/${random.pick(parts)}`
    }
    return current
  }
}

/** A seeded generator so every run indexes the same names. */
export function seededRandom(seed = 42) {
  let state = seed
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    return state / 2 ** 32
  }
  const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)] as T
  const hex64 = () =>
    Array.from({ length: 8 }, () =>
      Math.floor(next() * 2 ** 32)
        .toString(16)
        .padStart(8, '0'),
    ).join('')
  const fileName = () =>
    `${pick(words)} ${pick(words)} - ${pick(words)} ${Math.floor(next() * 10000)}.${pick(exts)}`
  return { next, pick, hex64, fileName }
}

export type Seeded = { peers: number; files: number; popular: string[]; password: string; seconds: number }

/**
 * `peers` peers (username peerN, all up for an hour) with `perPeer` files each, in folders four deep
 * (folderPaths); every tenth file is one of 1,000 popular contents that many peers share, the rest
 * are unique.
 */
export async function seedDirectory(
  db: Client,
  options: { peers: number; perPeer: number; onProgress?: (files: number) => void },
): Promise<Seeded> {
  const started = performance.now()
  const random = seededRandom()
  const password = 'bench-password'
  const passwordHash = await hashPassword(password)
  const now = Date.now()
  await db.execute({
    sql: `WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < ?)
          INSERT INTO peers (username, password_hash, url, lease_expires_at, last_seen, created_at)
          SELECT 'peer' || value, ?, 'http://127.0.0.1:' || (20000 + value % 40000), ?, ?, ? FROM n`,
    args: [options.peers, passwordHash, now + 3_600_000, now, now],
  })
  const ids = (await db.execute("SELECT id FROM peers WHERE username LIKE 'peer%' ORDER BY id")).rows.map(
    (r) => Number(r.id),
  )
  const popular = Array.from({ length: 1000 }, random.hex64)
  const nextPath = folderPaths()
  for (const [n, id] of ids.entries()) {
    const files = Array.from({ length: options.perPeer }, (_, i) => ({
      name: random.fileName(),
      path: nextPath(),
      size: Math.floor(random.next() * 5e8),
      sha256:
        i % 10 === 0
          ? (popular[Math.floor(random.next() * popular.length)] ?? random.hex64())
          : random.hex64(),
      chunkSize: 1_048_576,
      manifest: random.hex64(),
    }))
    await replaceIndex(db, id, files)
    if ((n + 1) % 1000 === 0) options.onProgress?.((n + 1) * options.perPeer)
  }
  return {
    peers: options.peers,
    files: options.peers * options.perPeer,
    popular,
    password,
    seconds: (performance.now() - started) / 1000,
  }
}

/** Bump when seedDirectory would produce different rows, so cached databases are made afresh. */
const SEED_VERSION = 3
const cacheDir = join(tmpdir(), 'peerdir-bench-cache')

/**
 * Copies a seeded database to `path` (a file path, not a URL). Seeding a million files takes minutes,
 * so each size is seeded once into a template kept under the OS temp dir and copied for every run;
 * the copy gets any newer migrations and leases that run an hour from now, like a fresh seed.
 */
export async function seededDatabase(
  path: string,
  options: { peers: number; perPeer: number; onProgress?: (files: number) => void },
): Promise<Seeded & { cached: boolean }> {
  const template = join(cacheDir, `directory-v${SEED_VERSION}-${options.peers}x${options.perPeer}.db`)
  const about = `${template}.json`
  const cached = existsSync(template) && existsSync(about)
  if (!cached) {
    mkdirSync(cacheDir, { recursive: true })
    const partial = `${template}.partial`
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${partial}${suffix}`, { force: true })
    const db = createClient({ url: `file:${partial}` })
    await db.execute('PRAGMA journal_mode = WAL')
    // A template is made again if anything goes wrong: no fsync per peer's commit (most of a seed's time).
    await db.execute('PRAGMA synchronous = OFF')
    await migrate(db)
    const seeded = await seedDirectory(db, options)
    // The totals count the peers up (as any stats read would first, once, in the copy's first request).
    await networkStats(db, Date.now())
    // Fold the WAL into the file so the template is one file to copy.
    await db.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    db.close()
    renameSync(partial, template)
    for (const suffix of ['-wal', '-shm']) rmSync(`${partial}${suffix}`, { force: true })
    writeFileSync(about, JSON.stringify(seeded))
  }
  copyFileSync(template, path)
  const seeded = JSON.parse(readFileSync(about, 'utf8')) as Seeded
  const db = createClient({ url: `file:${path}` })
  await db.execute('PRAGMA journal_mode = WAL')
  await migrate(db)
  await db.execute({ sql: 'UPDATE peers SET lease_expires_at = ?', args: [Date.now() + 3_600_000] })
  db.close()
  // On disk before anything is measured: else the kernel writes the copy's hundreds of MB back while
  // the first searches run, and they take twice as long in some runs than in others.
  for (const file of [path, `${path}-wal`]) {
    if (!existsSync(file)) continue
    const fd = openSync(file, 'r+')
    fsyncSync(fd)
    closeSync(fd)
  }
  return { ...seeded, cached }
}
