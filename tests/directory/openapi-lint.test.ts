import { createConfig, lintFromString } from '@redocly/openapi-core'
import { afterEach, describe, expect, it } from 'vitest'
import { createTestDirectory, type TestDirectory } from '../support/directory-app.ts'

let directory: TestDirectory | undefined
afterEach(() => {
  directory?.close()
  directory = undefined
})

const SOURCE = 'http://127.0.0.1/openapi.json'

/**
 * operation-4xx-response asks every operation for a 4XX answer. These three take no input and no
 * credential, so nothing a client sends can be refused: they answer 200, or 503 with storage down. Only
 * their own locations are excused; the rule still holds for every other operation.
 */
const NO_CLIENT_ERROR = ['/healthz', '/.well-known/jwks.json', '/'].map(
  (path) => `#/paths/${path.replaceAll('~', '~0').replaceAll('/', '~1')}/get/responses`,
)

/** operation-2xx-response asks for a 2XX answer: the presence socket's success is 101 Switching Protocols. */
const UPGRADE_ONLY = '#/paths/~1v1~1presence/get/responses'

describe('the OpenAPI document the directory serves', () => {
  it("passes Redocly's recommended rules with no error and no warning", async () => {
    directory = createTestDirectory()
    const response = await directory.request('/openapi.json')
    expect(response.status).toBe(200)
    const config = await createConfig(
      { extends: ['recommended'] },
      {
        ignore: {
          [SOURCE]: {
            'operation-4xx-response': new Set(NO_CLIENT_ERROR),
            'operation-2xx-response': new Set([UPGRADE_ONLY]),
          },
        },
      },
    )
    const problems = await lintFromString({ source: await response.text(), absoluteRef: SOURCE, config })
    const reported = problems
      .filter((problem) => !problem.ignored)
      .map(
        (problem) =>
          `${problem.severity} ${problem.ruleId} ${problem.location[0]?.pointer}: ${problem.message}`,
      )
    expect(reported).toEqual([])
    // The excuse is spent where it is given: each excused location is one the rule does flag.
    expect(
      problems.filter((problem) => problem.ignored).map((problem) => problem.location[0]?.pointer),
    ).toEqual(expect.arrayContaining([...NO_CLIENT_ERROR, UPGRADE_ONLY]))
  })
})
