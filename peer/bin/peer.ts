#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1
// Memory flags, measured on a 512 MiB download (peak RSS 224 -> ~135 MiB, same speed): a 1 MiB young
// generation, so received buffers die young and are freed by cheap scavenges instead of piling up to
// V8's external-memory limit; and two glibc malloc arenas instead of one per thread (the thread pool's
// freed buffers otherwise stay resident in arenas of their own).

// Before anything an older Node cannot link or parse is loaded: this file imports nothing statically,
// so Node 20 (Debian 13's) reads this line instead of a SyntaxError's stack.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(`peerdir needs Node 22.12 or newer (this is ${process.versions.node})`)
  process.exit(1)
}
// Before the CLI is imported, so its code is compiled from the cache on every run after the first.
const { enableCompileCache } = await import('node:module')
enableCompileCache()
const { main } = await import('../src/cli/main.ts')
await main(process.argv)
