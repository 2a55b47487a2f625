// npm run bench [-- --quick] [-- --only transfer|single|streaming|slots|relay|punch|cli|directory|saved-searches]: peerdir side by side
// with what a user would pick instead, one run, loopback (`single`: the one-source comparison alone).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { benchCli } from './cli-startup.ts'
import { benchDirectory } from './directory-throughput.ts'
import { benchHolePunch } from './hole-punch.ts'
import { benchRelay } from './relay.ts'
import { benchSavedSearches } from './saved-searches.ts'
import { benchSingleSource } from './single-source.ts'
import { benchStreaming } from './streaming.ts'
import { type Figure, machine, printTable, writeResults } from './support/report.ts'
import { benchTransfer } from './transfer.ts'
import { benchTransferSeries } from './transfer-series.ts'
import { benchUploadSlots } from './upload-slots.ts'

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } },
})
const quick = values.quick ?? false
const log = (line: string) => console.error(`  ${line}`)

console.log(`peerdir bench (${quick ? 'quick' : 'full'}) on ${machine()}`)
const figures: Figure[] = []
const only = values.only
if (only === 'single') {
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-files-'))
  try {
    figures.push(...(await benchSingleSource({ quick, work, log })).figures)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}
if (!only || only === 'transfer') {
  figures.push(...(await benchTransfer({ quick, log })))
  figures.push(...(await benchTransferSeries({ quick, log })))
}
if (!only || only === 'streaming') figures.push(...(await benchStreaming({ quick, log })))
if (!only || only === 'slots') figures.push(...(await benchUploadSlots({ quick, log })))
if (!only || only === 'relay') figures.push(...(await benchRelay({ quick, log })))
if (!only || only === 'punch') figures.push(...(await benchHolePunch({ log })))
if (!only || only === 'cli') figures.push(...(await benchCli({ quick, log })))
if (!only || only === 'directory') figures.push(...(await benchDirectory({ quick, log })))
if (!only || only === 'saved-searches') figures.push(...(await benchSavedSearches({ quick, log })))
printTable(figures)
// One file per day in bench/results/: a partial run (--only) adds to that day's full run.
const day = new Date().toISOString().slice(0, 10)
writeResults(join(import.meta.dirname, 'results', `${day}.json`), figures, quick, Boolean(only))
