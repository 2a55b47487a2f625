const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** One route's figures: requests by method and status, and its latency histogram. */
type RouteFigures = { requests: Map<string, number>; buckets: number[]; sum: number; count: number }

/** In-process request counters and a latency histogram, rendered in Prometheus text format. */
export class RequestMetrics {
  /** By route pattern; labels are escaped only when rendered, so a request builds no label text. */
  readonly #routes = new Map<string, RouteFigures>()

  observe(route: string, method: string, status: number, seconds: number) {
    let figures = this.#routes.get(route)
    if (!figures) {
      figures = { requests: new Map(), buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }
      this.#routes.set(route, figures)
    }
    const key = `${method} ${status}`
    figures.requests.set(key, (figures.requests.get(key) ?? 0) + 1)
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= (BUCKETS[i] as number)) figures.buckets[i]++
    figures.sum += seconds
    figures.count++
  }

  render(
    gauges: { peersUp: number; peersTotal: number; files: number; uniqueFiles: number },
    storageRowsWritten?: number,
  ): string {
    const lines = [
      '# HELP peerdir_http_requests_total HTTP requests by route, method and status.',
      '# TYPE peerdir_http_requests_total counter',
    ]
    for (const [route, figures] of this.#routes) {
      for (const [key, n] of figures.requests) {
        const [method, status] = key.split(' ')
        lines.push(
          `peerdir_http_requests_total{method="${method}",route="${escapeLabel(route)}",status="${status}"} ${n}`,
        )
      }
    }
    lines.push(
      '# HELP peerdir_http_request_duration_seconds HTTP request latency by route.',
      '# TYPE peerdir_http_request_duration_seconds histogram',
    )
    for (const [route, { buckets, sum, count }] of this.#routes) {
      const routeKey = `route="${escapeLabel(route)}"`
      BUCKETS.forEach((le, i) => {
        lines.push(`peerdir_http_request_duration_seconds_bucket{${routeKey},le="${le}"} ${buckets[i]}`)
      })
      lines.push(`peerdir_http_request_duration_seconds_bucket{${routeKey},le="+Inf"} ${count}`)
      lines.push(`peerdir_http_request_duration_seconds_sum{${routeKey}} ${sum}`)
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
