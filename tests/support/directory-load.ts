import { fileEntry } from './directory-app.ts'
import { fetchResending } from './fetch-resending.ts'

export type LoadReport = {
  peers: number
  requests: number
  byStatus: Record<string, number>
  serverErrors: string[]
  /** Requests sent again after their keep-alive connection was reset under them (see call). */
  resent: number
  /** What each peer last had accepted (200) by the directory, by username. */
  lastPublished: Map<string, string[]>
  seconds: number
}

type Simulated = {
  username: string
  token: string
  files: ReturnType<typeof fileEntry>[]
  generation: number
}

/**
 * Simulated peers against a directory over HTTP: each logs in, publishes an index, then round after
 * round heartbeats, searches, and republishes (PUT or PATCH) its index, as real daemons do.
 */
export async function runDirectoryLoad(options: {
  url: string
  peers: number
  filesPerPeer: number
  /** Stop after this long in the steady phase (a soak; default: no limit)... */
  seconds?: number
  /** ...or once every peer has done this many rounds (heartbeat, search, index write). */
  rounds?: number
  concurrency?: number
}): Promise<LoadReport> {
  const report: LoadReport = {
    peers: options.peers,
    requests: 0,
    byStatus: {},
    serverErrors: [],
    resent: 0,
    lastPublished: new Map(),
    seconds: 0,
  }
  const started = performance.now()
  const call = async (method: string, path: string, body?: unknown, token?: string) => {
    // HTTP/1.1 keep-alive's own race: the directory closed an idle connection (after its 5 s) just as
    // this client, starved of CPU on a loaded machine, sent on it; the kernel answers with a reset. Any
    // client sends again; here up to twice, since the pool may hand the resend another connection
    // that idled as long (a hundred peers' connections idle together). A directory that died fails all.
    const response = await fetchResending(
      `${options.url}${path}`,
      {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      },
      { sends: 3, onResend: () => report.resent++ },
    )
    report.requests++
    report.byStatus[response.status] = (report.byStatus[response.status] ?? 0) + 1
    const text = await response.text()
    if (response.status >= 500)
      report.serverErrors.push(`${method} ${path} ${response.status} ${text.slice(0, 200)}`)
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
  }
  const indexFor = (username: string, generation: number) =>
    Array.from({ length: options.filesPerPeer }, (_, i) =>
      fileEntry(`${username}-g${generation}-${i}.dat`, `${username}:${generation}:${i}`, i + 1),
    )

  const peers: Simulated[] = []
  await inBatches(
    Array.from({ length: options.peers }, (_, i) => i),
    options.concurrency ?? 20,
    async (i) => {
      const username = `load-${i}`
      const login = await call('POST', '/v1/login', {
        username,
        password: `password-${i}`,
        url: `http://127.0.0.1:${30000 + i}`,
      })
      const peer = { username, token: String(login.body.token), files: indexFor(username, 0), generation: 0 }
      const put = await call('PUT', '/v1/index', { files: peer.files }, peer.token)
      if (put.status === 200) report.lastPublished.set(username, peer.files.map((f) => f.sha256).sort())
      peers.push(peer)
    },
  )

  // The clock for the steady phase starts once every peer is in, however long logins took.
  const deadline = performance.now() + (options.seconds ?? Number.POSITIVE_INFINITY) * 1000
  await inBatches(peers, options.concurrency ?? 20, async (peer) => {
    let step = 0
    while (performance.now() < deadline && step < (options.rounds ?? Number.POSITIVE_INFINITY)) {
      step++
      const beat = await call('POST', '/v1/heartbeat', undefined, peer.token)
      if (beat.status === 200 && typeof beat.body.token === 'string') peer.token = beat.body.token
      await call('GET', `/v1/search?q=${encodeURIComponent(`g${step % 3}-${step % 50}`)}&limit=20`)
      const next = peer.generation + 1
      if (step % 2 === 0) {
        const files = indexFor(peer.username, next)
        const put = await call('PUT', '/v1/index', { files }, peer.token)
        if (put.status === 200) {
          peer.files = files
          peer.generation = next
        }
      } else {
        // Replace a tenth of the index by delta, as the folder watcher does.
        const removed = peer.files.slice(0, Math.ceil(peer.files.length / 10))
        const added = removed.map((_, i) =>
          fileEntry(`${peer.username}-d${next}-${i}.dat`, `${peer.username}:d${next}:${i}`),
        )
        const patch = await call(
          'PATCH',
          '/v1/index',
          { add: added, remove: removed.map((f) => f.sha256) },
          peer.token,
        )
        if (patch.status === 200) {
          peer.files = [...peer.files.slice(removed.length), ...added]
          peer.generation = next
        }
      }
      report.lastPublished.set(peer.username, peer.files.map((f) => f.sha256).sort())
    }
  })
  report.seconds = (performance.now() - started) / 1000
  return report
}

async function inBatches<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>) {
  let next = 0
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T
      await work(item)
    }
  })
  await Promise.all(workers)
}

/** Resident memory of a process in MiB, from /proc (Linux). */
export async function rssMiB(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return kb / 1024
}

/**
 * The most resident memory a process has had in MiB (the kernel's high-water mark, so no peak slips
 * between samples), since it started or since `resetPeakRss`.
 */
export async function peakRssMiB(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

/** Starts a process's high-water mark of resident memory again from what it holds now (Linux 4.0+). */
export async function resetPeakRss(pid: number): Promise<void> {
  const { writeFile } = await import('node:fs/promises')
  await writeFile(`/proc/${pid}/clear_refs`, '5')
}
