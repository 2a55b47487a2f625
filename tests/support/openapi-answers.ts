import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'

type Header = { required?: boolean; schema?: { type?: string } }
type Answer = { headers?: Record<string, Header>; content?: Record<string, { schema?: object }> }
type Operation = { operationId: string; responses: Record<string, Answer> }
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> }
type Route = { method: string; template: string; pattern: RegExp; operation: Operation }

const DOCUMENT_ID = 'openapi.json'
const pointer = (...parts: string[]) =>
  `#/${parts.map((part) => part.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`

/**
 * Live answers checked against an OpenAPI document: the status must be one the operation lists, and
 * the content type, required headers and body what that answer declares. Remembers what each
 * operation answered, so a test can ask which documented answers it never saw.
 */
export class DocumentedAnswers {
  readonly #routes: Route[]
  readonly #ajv: Ajv2020
  readonly #seen = new Map<string, Set<string>>()

  constructor(document: Document) {
    // 3.1 schemas are JSON Schema 2020-12; a 3.0 document would need draft-07 plus `nullable`.
    if (!document.openapi.startsWith('3.1.')) {
      throw new Error(`only OpenAPI 3.1 documents are checked here, not ${document.openapi}`)
    }
    // strict off: the document around the schemas (paths, info) and `example` are not schema keywords.
    this.#ajv = new Ajv2020({ strict: false, allErrors: true })
    addFormats.default(this.#ajv)
    this.#ajv.addSchema(document, DOCUMENT_ID)
    this.#routes = Object.entries(document.paths).flatMap(([template, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({
        method: method.toUpperCase(),
        template,
        pattern: new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`),
        operation,
      })),
    )
  }

  /** Checks one answer to `method path`; fails with what differs from the document. Answers the body. */
  async check(method: string, path: string, response: Response): Promise<unknown> {
    const pathname = new URL(path, 'http://directory.test').pathname
    const route = this.#routes.find((r) => r.method === method && r.pattern.test(pathname))
    if (!route) throw new Error(`${method} ${pathname} is no operation of the document`)
    const { responses } = route.operation
    const operationId = `${route.operation.operationId} (${method} ${route.template})`
    const status = String(response.status)
    const text = await response.text()
    const answer = responses[status]
    if (!answer) {
      throw new Error(`${operationId} answered ${status}, which the document does not list: ${text}`)
    }
    for (const [name, header] of Object.entries(answer.headers ?? {})) {
      const value = response.headers.get(name)
      if (header.required && value === null) throw new Error(`${operationId} ${status}: no ${name} header`)
      if (value !== null && header.schema?.type === 'integer' && !/^\d+$/.test(value)) {
        throw new Error(`${operationId} ${status}: ${name} is ${value}, not an integer`)
      }
    }
    const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
    const declared = Object.keys(answer.content ?? {})
    if (!declared.includes(mediaType)) {
      throw new Error(`${operationId} ${status} came as "${mediaType}", not as ${declared.join(' or ')}`)
    }
    const body = mediaType === 'application/json' ? JSON.parse(text) : text
    const id = `${DOCUMENT_ID}${pointer('paths', route.template, method.toLowerCase(), 'responses', status, 'content', mediaType, 'schema')}`
    const validate = this.#ajv.getSchema(id)
    if (!validate) throw new Error(`${operationId} ${status} ${mediaType} declares no schema`)
    if (!validate(body)) {
      throw new Error(
        `${operationId} ${status} body does not match the document: ${this.#ajv.errorsText(validate.errors)}: ${text.slice(0, 500)}`,
      )
    }
    const seen = this.#seen.get(operationId) ?? new Set()
    this.#seen.set(operationId, seen.add(status))
    return body
  }

  /**
   * Checks a WebSocket handshake's answer (`fetch` cannot make one, so the test reads the status off
   * the socket): the status must be one the operation lists, with no body declared.
   */
  checkUpgrade(method: string, path: string, status: number) {
    const pathname = new URL(path, 'http://directory.test').pathname
    const route = this.#routes.find((r) => r.method === method && r.pattern.test(pathname))
    if (!route) throw new Error(`${method} ${pathname} is no operation of the document`)
    const operationId = `${route.operation.operationId} (${method} ${route.template})`
    const answer = route.operation.responses[String(status)]
    if (!answer) throw new Error(`${operationId} answered ${status}, which the document does not list`)
    if (answer.content) throw new Error(`${operationId} ${status} declares a body; a handshake has none`)
    const seen = this.#seen.get(operationId) ?? new Set()
    this.#seen.set(operationId, seen.add(String(status)))
  }

  /** Every documented `operationId status` no checked answer has shown. */
  unseen(): string[] {
    return this.#routes.flatMap(({ method, template, operation }) => {
      const operationId = `${operation.operationId} (${method} ${template})`
      return Object.keys(operation.responses)
        .filter((status) => !this.#seen.get(operationId)?.has(status))
        .map((status) => `${operationId} ${status}`)
    })
  }
}
