import type { FC } from 'hono/jsx'

export const openApiConfig = {
  openapi: '3.1.0',
  info: {
    title: 'peerdir directory',
    version: '1',
    description:
      'The directory of a peerdir network: peers log in, publish what they share, keep a lease, and search. ' +
      'File bytes never pass through it. Every error is {"error": {"code", "message"}}; each answer below ' +
      'names the codes it carries.',
    license: { name: 'MIT', identifier: 'MIT' },
  },
  // Relative: the origin this document is fetched from, whatever host, scheme or proxy is in front (Node
  // or Workers), with no request needed to build it.
  servers: [{ url: '/', description: 'The directory serving this document' }],
  tags: [
    { name: 'auth', description: 'Logins, leases, sessions and the tokens peers present to each other' },
    { name: 'index', description: 'What a peer shares: its index of file entries' },
    { name: 'search', description: 'Finding contents and their live sources' },
    { name: 'network', description: 'Peers and totals' },
    { name: 'admin', description: 'The operator’s account calls, guarded by the ADMIN_TOKEN secret' },
    { name: 'operations', description: 'Health and metrics' },
    { name: 'dashboard', description: 'The web page of the network' },
  ],
}

type Operation = {
  summary?: string
  tags?: string[]
  security?: Record<string, unknown>[]
  parameters?: Parameter[]
}
type Parameter = { name: string; in: string; required?: boolean; schema?: { type?: string } }
type Document = { info: { title: string; description?: string }; paths?: object }

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const

const SCHEMES: Record<string, string> = {
  bearerAuth: 'bearer',
  adminToken: 'ADMIN_TOKEN',
  metricsToken: 'METRICS_TOKEN',
}

/** What the Auth column says: open, or the credential; an empty alternative ({}) means it may be open. */
function authOf(op: Operation): string {
  const schemes = (op.security ?? []).flatMap((alternative) => Object.keys(alternative))
  const names = schemes.map((scheme) => SCHEMES[scheme] ?? scheme).join(' or ')
  if (!names) return 'open'
  return op.security?.some((alternative) => Object.keys(alternative).length === 0)
    ? `open, or ${names} when configured`
    : names
}

const OperationRow: FC<{ method: string; path: string; op: Operation }> = ({ method, path, op }) => (
  <tr>
    <td>
      <code class={`m m-${method}`}>{method.toUpperCase()}</code>
    </td>
    <td>
      <code>{path}</code>
    </td>
    <td>{op.summary ?? ''}</td>
    <td>{authOf(op)}</td>
    <td>
      {(op.parameters ?? []).map((p) => (
        <span class="param">
          <code>{p.name}</code> ({p.in}
          {p.required ? ', required' : ''})
        </span>
      ))}
    </td>
  </tr>
)

/** A browsable, dependency-free page of the OpenAPI document (works offline, unlike a CDN-hosted UI). */
export function docsPage(doc: Document) {
  const paths = (doc.paths ?? {}) as Record<string, Record<string, Operation | undefined>>
  const rows = Object.entries(paths).flatMap(([path, item]) =>
    METHODS.filter((method) => item[method]).map((method) => ({
      method,
      path,
      op: item[method] as Operation,
    })),
  )
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{doc.info.title} API</title>
        <style>{`
          body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem;color:#111}
          table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
          .m{font-weight:700}.m-get{color:#05603a}.m-post{color:#1849a9}.m-put,.m-patch{color:#93370d}
          .param{display:inline-block;margin-right:.6rem}
        `}</style>
      </head>
      <body>
        <h1>{doc.info.title} API</h1>
        <p>{doc.info.description}</p>
        <p>
          Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). Errors are always{' '}
          <code>{'{"error": {"code", "message"}}'}</code>.
        </p>
        <table>
          <thead>
            <tr>
              <th>Method</th>
              <th>Path</th>
              <th>What it does</th>
              <th>Auth</th>
              <th>Parameters</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <OperationRow {...row} />
            ))}
          </tbody>
        </table>
      </body>
    </html>
  )
}
