import { createHash } from 'node:crypto'
import { request } from 'node:http'

const sha = (text: string) => createHash('sha256').update(text).digest('hex')

/** A PUT /v1/index body of `files` entries whose long names make it about `mib` MiB of JSON. */
export function bigIndexBody(owner: string, files: number, mib: number): string {
  const perEntry = Math.floor((mib * 1024 * 1024) / files)
  // An entry is about 200 bytes besides its name.
  const pad = 'n'.repeat(Math.max(1, Math.min(240, perEntry - 200)))
  const entries = Array.from({ length: files }, (_, i) => ({
    name: `${owner}-${i}-${pad}.bin`,
    size: 1000 + i,
    sha256: sha(`${owner}:content:${i}`),
    chunkSize: 1_048_576,
    manifest: sha(`${owner}:manifest:${i}`),
  }))
  return JSON.stringify({ files: entries })
}

/**
 * A PUT /v1/index body of `files` entries padded with whitespace (which JSON allows) to about `mib` MiB:
 * as big on the wire and in the directory's body budget as a real index of that size, but with only a
 * few rows to write.
 */
export function paddedIndexBody(owner: string, files: number, mib: number): string {
  const body = bigIndexBody(owner, files, 0)
  return `${body}${' '.repeat(Math.max(0, Math.floor(mib * 1024 * 1024) - body.length))}`
}

export type Answer = { status: number; retryAfter: string | undefined; text: string }

/**
 * A request over its own connection whose last bytes the caller sends when it likes (`finish`):
 * until then the request (an index write) is certainly in flight on the directory.
 */
export function heldRequest(url: string, method: string, token: string, body: string) {
  const payload = Buffer.from(body)
  let answer!: Promise<Answer>
  const req = request(url, {
    method,
    agent: false,
    headers: {
      'content-type': 'application/json',
      'content-length': payload.length,
      authorization: `Bearer ${token}`,
    },
  })
  answer = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        text += chunk
      })
      res.on('end', () => {
        const retryAfter = res.headers['retry-after']
        resolve({ status: res.statusCode ?? 0, retryAfter: String(retryAfter ?? '') || undefined, text })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
  const held = Math.min(1024, payload.length)
  req.write(payload.subarray(0, payload.length - held))
  return {
    answer,
    /** Drops the connection mid-body, as a client that died. */
    abort: () => {
      answer.catch(() => {})
      req.destroy()
    },
    finish: () => {
      req.end(payload.subarray(payload.length - held))
      return answer
    },
  }
}

/** An index write sent whole; its answer. */
export const indexWrite = (url: string, token: string, body: string) =>
  heldRequest(`${url}/v1/index`, 'PUT', token, body).finish()
