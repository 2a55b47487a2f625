import type { z } from '@hono/zod-openapi'
import { ErrorSchema } from '../../contract/schemas.ts'

/**
 * The answers routes declare in the OpenAPI document. Each refusal says when it is made and which
 * error codes it carries, so a client can tell its cases apart without reading the code; the ones
 * several routes answer are worded once here.
 */

type Header = {
  description: string
  required: true
  schema: { type: 'integer' | 'string'; minimum?: number }
}

const retryAfter: Record<string, Header> = {
  'Retry-After': {
    description: 'Seconds to wait before trying again',
    required: true,
    schema: { type: 'integer', minimum: 0 },
  },
}

const challenge: Record<string, Header> = {
  'WWW-Authenticate': {
    description: 'Bearer realm="peerdir": the credential this call takes',
    required: true,
    schema: { type: 'string' },
  },
}

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
})

/** An error answer: the contract's `{"error": {code, message}}` body (ErrorSchema). */
export const refusal = (when: string, headers?: Record<string, Header>) => ({
  description: when,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema: ErrorSchema } },
})

/** 401 with the Bearer challenge: a credential checked by its signature or against a secret. */
export const challenged = (when: string) => refusal(when, challenge)

/** 429 with Retry-After. */
export const throttled = (when: string) => refusal(when, retryAfter)

/** 400 from the route's zod schemas (or unparsable JSON); the message names the field and its rule. */
export const invalidInput = (what: string) =>
  refusal(`${what} (invalid_request); the message names the first wrong field and what it must be.`)

export const sessionTokenRefused = challenged(
  'No bearer token, or one that is not a live session token of this directory: invalid or expired (invalid_token), a call token (call_token), missing (missing_token), or of a logged-out session (session_revoked)',
)

/** Reads are open unless READ_REQUIRES_AUTH is set; then they take a session token like the writes. */
export const readTokenRefused = challenged(
  'Only when the directory has READ_REQUIRES_AUTH set: no live session token (missing_token, invalid_token, call_token, session_revoked)',
)

export const viewerRefused = refusal(
  'The session was opened without a url (a viewer, like the dashboard) and may only read (viewer_session)',
)

export const bodyTooLarge = (limit: string) =>
  refusal(`The body is larger than ${limit} (payload_too_large); refused before it is read whole`)

export const notJson = refusal(
  'A body sent as something other than application/json, or without a Content-Type (unsupported_media_type)',
)

export const storageDown = refusal(
  'The directory’s storage is unreachable (storage_unavailable); Retry-After says when to try again',
  retryAfter,
)

type Security = Record<string, string[]>[]
export const bearer: Security = [{ bearerAuth: [] }]
/** No credential: stated explicitly, so the document says the call is open rather than leaving it unsaid. */
export const open: Security = []
/** Open, or with a session token when the directory has READ_REQUIRES_AUTH set. */
export const openUnlessMembersOnly: Security = [{}, { bearerAuth: [] }]
