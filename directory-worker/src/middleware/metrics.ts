import { createMiddleware } from 'hono/factory'

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** In-process request counters and a latency histogram, rendered in Prometheus text format. */
export class RequestMetrics {
  readonly #requests = new Map<string, number>()
  readonly #buckets = new Map<string, number[]>()
  readonly #sums = new Map<string, number>()
  readonly #counts = new Map<string, number>()

  observe(route: string, method: string, status: number, seconds: number) {
    const key = `method="${method}",route="${escapeLabel(route)}",status="${status}"`
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1)
    const routeKey = `route="${escapeLabel(route)}"`
    const buckets = this.#buckets.get(routeKey) ?? BUCKETS.map(() => 0)
    BUCKETS.forEach((le, i) => {
      if (seconds <= le) buckets[i] = (buckets[i] ?? 0) + 1
    })
    this.#buckets.set(routeKey, buckets)
    this.#sums.set(routeKey, (this.#sums.get(routeKey) ?? 0) + seconds)
    this.#counts.set(routeKey, (this.#counts.get(routeKey) ?? 0) + 1)
  }

  middleware() {
    return createMiddleware(async (c, next) => {
      const started = performance.now()
      await next()
      // routePath is the matched pattern (/v1/files/:sha256), so labels stay few whatever the URLs are.
      const route = c.req.routePath && c.req.routePath !== '/*' ? c.req.routePath : 'unmatched'
      this.observe(route, c.req.method, c.res.status, (performance.now() - started) / 1000)
    })
  }

  render(
    gauges: { peersUp: number; peersTotal: number; files: number; uniqueFiles: number },
    storageRowsWritten?: number,
  ): string {
    const lines = [
      '# HELP peerdir_http_requests_total HTTP requests by route, method and status.',
      '# TYPE peerdir_http_requests_total counter',
      ...[...this.#requests].map(([labels, n]) => `peerdir_http_requests_total{${labels}} ${n}`),
      '# HELP peerdir_http_request_duration_seconds HTTP request latency by route.',
      '# TYPE peerdir_http_request_duration_seconds histogram',
    ]
    for (const [routeKey, buckets] of this.#buckets) {
      BUCKETS.forEach((le, i) => {
        lines.push(`peerdir_http_request_duration_seconds_bucket{${routeKey},le="${le}"} ${buckets[i]}`)
      })
      const count = this.#counts.get(routeKey) ?? 0
      lines.push(`peerdir_http_request_duration_seconds_bucket{${routeKey},le="+Inf"} ${count}`)
      lines.push(`peerdir_http_request_duration_seconds_sum{${routeKey}} ${this.#sums.get(routeKey) ?? 0}`)
      lines.push(`peerdir_http_request_duration_seconds_count{${routeKey}} ${count}`)
    }
    lines.push(
      '# HELP peerdir_peers_up Peers whose lease is running.',
      '# TYPE peerdir_peers_up gauge',
      `peerdir_peers_up ${gauges.peersUp}`,
      '# HELP peerdir_peers Registered peers.',
      '# TYPE peerdir_peers gauge',
      `peerdir_peers ${gauges.peersTotal}`,
      '# HELP peerdir_files_indexed Files offered by live peers.',
      '# TYPE peerdir_files_indexed gauge',
      `peerdir_files_indexed ${gauges.files}`,
      '# HELP peerdir_unique_files Distinct contents offered by live peers.',
      '# TYPE peerdir_unique_files gauge',
      `peerdir_unique_files ${gauges.uniqueFiles}`,
    )
    if (storageRowsWritten !== undefined) {
      lines.push(
        '# HELP peerdir_d1_rows_written_total D1 rows written by this isolate (D1 meta.rows_written, what D1 bills).',
        '# TYPE peerdir_d1_rows_written_total counter',
        `peerdir_d1_rows_written_total ${storageRowsWritten}`,
      )
    }
    return `${lines.join('\n')}\n`
  }
}

const escapeLabel = (value: string) => value.replace(/[\\"\n]/g, (ch) => (ch === '\n' ? '\\n' : `\\${ch}`))
