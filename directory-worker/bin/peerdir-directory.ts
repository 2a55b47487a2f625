#!/usr/bin/env node
import { enableCompileCache } from 'node:module'

// Before the directory is imported, so its code is compiled from the cache on every start after the first.
enableCompileCache()
const { main } = await import('../src/entries/cli.ts')
await main(process.argv)
