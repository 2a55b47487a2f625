#!/usr/bin/env node
// Before anything an older Node cannot link or parse is loaded: this file imports nothing statically,
// so Node 20 (Debian 13's) reads this line instead of a SyntaxError's stack.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(`peerdir needs Node 22.12 or newer (this is ${process.versions.node})`)
  process.exit(1)
}
// Before the directory is imported, so its code is compiled from the cache on every start after the first.
const { enableCompileCache } = await import('node:module')
enableCompileCache()
const { main } = await import('../src/entries/cli.ts')
await main(process.argv)
