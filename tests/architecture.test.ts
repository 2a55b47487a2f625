import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '..')

/**
 * What each tree may import besides itself. The peer and the directory share only the REST contract
 * (contract/) and neither reaches into the other; the contract stands alone.
 */
const TREES: Record<string, string[]> = {
  'peer/src': ['contract', 'package.json'],
  'directory-worker/src': ['contract'],
  contract: [],
}

/** The packages the contract may import: it is what any client of the REST API could load. */
const CONTRACT_PACKAGES = ['zod']

/** What each folder of peer/src may import besides itself and the contract: the layers point one way. */
const PEER_LAYERS: Record<string, string[]> = {
  cli: ['ui', 'daemon', 'relay', 'gen'],
  // The web app (`peer ui`) is made from the daemon's parts; the daemon only serves what it is given.
  ui: ['daemon', 'wire', 'gen'],
  relay: ['serve', 'wire', 'content', 'gen'],
  daemon: ['serve', 'transfer', 'wire', 'content', 'gen'],
  serve: ['wire', 'content', 'gen'],
  transfer: ['wire', 'content'],
  wire: ['content', 'gen'],
  content: [],
  gen: [],
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return /\.tsx?$/.test(entry.name) ? [path] : []
  })
}

/** Every import specifier of a file, type-only, re-exports and dynamic ones included. */
function specifiersOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:from\s+|import\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1] as string)
}

/** Every relative import of a file as absolute paths. */
function importsOf(file: string): string[] {
  return specifiersOf(file)
    .filter((specifier) => specifier.startsWith('./') || specifier.startsWith('../'))
    .map((specifier) => resolve(dirname(file), specifier))
}

function cycles(files: string[]): string[][] {
  const graph = new Map(files.map((f) => [f, importsOf(f).filter((i) => files.includes(i))]))
  const found: string[][] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const path: string[] = []
  const visit = (file: string) => {
    if (state.get(file) === 'done') return
    if (state.get(file) === 'visiting') {
      found.push(path.slice(path.indexOf(file)).map((f) => relative(root, f)))
      return
    }
    state.set(file, 'visiting')
    path.push(file)
    for (const next of graph.get(file) ?? []) visit(next)
    path.pop()
    state.set(file, 'done')
  }
  for (const file of files) visit(file)
  return found
}

describe('the source tree', () => {
  for (const dir of Object.keys(TREES)) {
    it(`${dir} has no import cycle between files`, () => {
      expect(cycles(sourceFiles(join(root, dir)))).toEqual([])
    })
  }

  it('peer/src folders import only the layers below them', () => {
    const peerSrc = join(root, 'peer/src')
    const wrong: string[] = []
    for (const file of sourceFiles(peerSrc)) {
      const folder = relative(peerSrc, file).split('/')[0] as string
      const allowed = PEER_LAYERS[folder]
      if (!allowed) continue // files at the top (version.ts) belong to no layer
      for (const target of importsOf(file)) {
        const into = relative(peerSrc, target).split('/')
        if (into[0] === '..' || into.length === 1) continue // outside peer/src: the trees' rule below
        if (into[0] !== folder && !allowed.includes(into[0] as string))
          wrong.push(`${relative(root, file)} -> ${relative(root, target)}`)
      }
    }
    expect(wrong).toEqual([])
  })

  for (const [tree, allowed] of Object.entries(TREES)) {
    it(`${tree} imports nothing outside itself${allowed.length ? ` but ${allowed.join(', ')}` : ''}`, () => {
      const wrong: string[] = []
      for (const file of sourceFiles(join(root, tree))) {
        for (const target of importsOf(file)) {
          const path = relative(root, target)
          const inside = (folder: string) => path === folder || path.startsWith(`${folder}/`)
          if (!inside(tree) && !allowed.some(inside)) wrong.push(`${relative(root, file)} -> ${path}`)
        }
      }
      expect(wrong).toEqual([])
    })
  }

  it(`the contract imports no package but ${CONTRACT_PACKAGES.join(', ')} (no Hono in a peer's bundle)`, () => {
    const wrong = sourceFiles(join(root, 'contract')).flatMap((file) =>
      specifiersOf(file)
        .filter((specifier) => !specifier.startsWith('.') && !CONTRACT_PACKAGES.includes(specifier))
        .map((specifier) => `${relative(root, file)} -> ${specifier}`),
    )
    expect(wrong).toEqual([])
  })
})
