#!/usr/bin/env node
// The dashboard and docs pages are Hono JSX (.tsx), which Node's own type stripping does not cover,
// so the directory loads its sources through tsx (esbuild) instead of a separate build step.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../src/cli.ts')
await main(process.argv)
