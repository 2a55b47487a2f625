// npm run bench [-- --quick]: peerdir side by side with what a user would pick instead, one run, loopback.
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { benchDirectory } from './directory-throughput.ts'
import { type Figure, machine, printTable, writeResults } from './support/report.ts'

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
const quick = values.quick ?? false
const log = (line: string) => console.error(`  ${line}`)

console.log(`peerdir bench (${quick ? 'quick' : 'full'}) on ${machine()}`)
const figures: Figure[] = []
figures.push(...(await benchDirectory({ quick, log })))
printTable(figures)
writeResults(join(import.meta.dirname, 'results.json'), figures, quick)
