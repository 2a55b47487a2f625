import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../support/directory-process.ts'

const buf = join(repoRoot, 'node_modules/.bin/buf')

function filesUnder(dir: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name)
      if (entry.isDirectory()) walk(path)
      else out.set(relative(dir, path), readFileSync(path, 'utf8'))
    }
  }
  walk(dir)
  return out
}

describe('protobuf contract', () => {
  it('is lint-clean under buf STANDARD', () => {
    expect(() => execFileSync(buf, ['lint'], { cwd: repoRoot, stdio: 'pipe' })).not.toThrow()
  })

  it('has committed generated code identical to what `npx buf generate` makes now', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'peerdir-buf-'))
    cpSync(join(repoRoot, 'proto'), join(scratch, 'proto'), { recursive: true })
    cpSync(join(repoRoot, 'buf.yaml'), join(scratch, 'buf.yaml'))
    writeFileSync(
      join(scratch, 'buf.gen.yaml'),
      readFileSync(join(repoRoot, 'buf.gen.yaml'), 'utf8').replace(
        'local: protoc-gen-es',
        `local: ${join(repoRoot, 'node_modules/.bin/protoc-gen-es')}`,
      ),
    )
    execFileSync(buf, ['generate'], { cwd: scratch, stdio: 'pipe' })
    const fresh = filesUnder(join(scratch, 'peer/src/gen'))
    const committed = filesUnder(join(repoRoot, 'peer/src/gen'))
    expect([...committed.keys()].sort()).toEqual([...fresh.keys()].sort())
    for (const [path, text] of fresh)
      expect(committed.get(path), `${path} is stale: run npx buf generate`).toBe(text)
  })
})
