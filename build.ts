// npm run build (also run by `npm ci` and `npm pack` as `prepare`): the bins as JavaScript under dist/,
// so nothing is type-stripped or transpiled at run time and an installed package runs on Node >= 22.12.
// esbuild rather than tsc: one bundle per bin with its dependencies inside starts several times faster
// than hundreds of files resolved through node_modules, and the installed package needs only libSQL.
// Splitting keeps each command's code in its own chunk (`peer start` loads the daemon, `peer status`
// does not); the Workers build is wrangler's own bundle of the sources.
import { rmSync } from 'node:fs'
import { build } from 'esbuild'
import { writeDashboardScript } from './build/dashboard-script.ts'
import { writeWebAppScript } from './build/web-app-script.ts'

await writeDashboardScript()
await writeWebAppScript()
rmSync('dist', { recursive: true, force: true })
await build({
  entryPoints: {
    peer: 'peer/bin/peer.ts',
    'peerdir-directory': 'directory-worker/bin/peerdir-directory.ts',
  },
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22.12',
  jsx: 'automatic',
  jsxImportSource: 'hono/jsx',
  // libSQL loads a native addon per platform: it stays an installed dependency.
  external: ['@libsql/client', 'libsql'],
  // Bundled CommonJS packages (commander) call require() for Node's built-ins.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  logLevel: 'warning',
})
