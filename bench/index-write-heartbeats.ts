// Heartbeat latency of one peer at rest and during a 100,000-entry (~30 MiB) PUT /v1/index of
// another, against the built directory (`npm run build` first). Standalone, not part of run.ts:
//   npx node bench/index-write-heartbeats.ts [root of a checkout with dist/, default this one]
import { join } from 'node:path'
import { postJson, repoRoot, startDirectoryProcess } from '../tests/support/directory-process.ts'
import { bigIndexBody, heldRequest, indexWrite } from '../tests/support/index-flood.ts'

const root = process.argv[2] ?? repoRoot
const directory = await startDirectoryProcess({
  command: [join(root, 'node_modules/.bin/node'), join(root, 'dist/peerdir-directory.js')],
  env: { LEASE_SECONDS: '600' },
})
const { url } = directory

async function login(username: string) {
  const answer = await postJson(`${url}/v1/login`, {
    username,
    password: `password-${username}`,
    url: `http://127.0.0.1:9/${username}`,
  })
  return String(((await answer.json()) as { token: string }).token)
}

const writer = await login('writer')
let beater = await login('beater')
async function beat() {
  const started = performance.now()
  const answer = await heldRequest(`${url}/v1/heartbeat`, 'POST', beater, '').finish()
  if (answer.status === 200) beater = (JSON.parse(answer.text) as { token: string }).token
  return performance.now() - started
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0

const atRest: number[] = []
for (let i = 0; i < 20; i++) atRest.push(await beat())
// The first write fills an empty index; the second replaces every row of it.
for (const tag of ['first', 'second']) {
  const body = bigIndexBody(tag, 100_000, 29)
  let done = false
  const started = performance.now()
  const write = indexWrite(url, writer, body).finally(() => {
    done = true
  })
  const during: number[] = []
  while (!done) {
    during.push(await beat())
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const answer = await write
  console.log(
    `${tag} write: ${answer.status} in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `${during.length} heartbeats meanwhile, median ${median(during).toFixed(0)} ms, worst ` +
      `${Math.max(...during).toFixed(0)} ms; at rest median ${median(atRest).toFixed(1)} ms`,
  )
}
await directory.stop('SIGKILL')
