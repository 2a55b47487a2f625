/**
 * The REST API's bodies: the directory validates requests with these and documents every answer by them
 * (`/openapi.json`); peers are typed by them (api-types.ts). Plain zod, so a client loads no Hono: the
 * OpenAPI names, examples and descriptions are zod's own `.meta()`, which @hono/zod-openapi reads. A body
 * that is another plus fields is an intersection, which the document writes as `allOf` with a `$ref` (zod's
 * `.extend()` would copy the fields in).
 */
import { z } from 'zod'
import { folderPathProblem, MAX_PATH_BYTES, MAX_PATH_SEGMENTS } from './folder-path.ts'

const textEncoder = new TextEncoder()
const isControl = (ch: string) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === '\u007f'

export const Sha256 = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex characters (a SHA-256 as sha256sum prints it)')
  .meta({ example: 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9' })

/** A plain file name: no path, nothing that could escape a folder or break a terminal line. */
export const FileName = z
  .string()
  .min(1, 'must not be empty')
  .refine((name) => textEncoder.encode(name).length <= 255, 'must be at most 255 bytes in UTF-8')
  .refine((name) => !/[/\\]/.test(name), 'must be a plain file name without / or \\')
  .refine((name) => ![...name].some(isControl), 'must not contain NUL or control characters')
  .refine((name) => name !== '.' && name !== '..', 'must not be . or ..')
  .meta({ example: 'song.mp3' })

/** A folder under the shared folder (see folder-path.ts); each segment obeys FileName's rules. */
export const FolderPath = z
  .string()
  .superRefine((path, ctx) => {
    const problem = folderPathProblem(
      path,
      (segment) => FileName.safeParse(segment).error?.issues[0]?.message,
    )
    if (problem) ctx.addIssue({ code: 'custom', message: problem })
  })
  .meta({
    description: `The folder under the shared folder, / between folders, "" at the top; at most ${MAX_PATH_SEGMENTS} folders and ${MAX_PATH_BYTES} bytes`,
    example: 'Nightjar Ensemble/Songs from Harrow Lane',
  })

export const Username = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z, a-z, 0-9, ".", "_" or "-"')
  .meta({ example: 'alice' })

export const Password = z
  .string()
  .min(8, 'must be at least 8 characters')
  .max(256, 'must be at most 256 characters')

export const PeerUrl = z
  .string()
  .max(2048, 'must be at most 2048 characters')
  // The URL parser would drop tabs and line breaks and keep the rest; the stored text is what peers print.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  .regex(/^[^\u0000-\u0020\u007f-\u009f]*$/, 'must not contain spaces or control characters')
  .refine((value) => {
    try {
      const url = new URL(value)
      return (
        (url.protocol === 'http:' || url.protocol === 'https:') &&
        url.hostname !== '' &&
        url.username === '' &&
        url.password === '' &&
        url.search === '' &&
        url.hash === '' &&
        url.port !== ''
      )
    } catch {
      return false
    }
  }, 'must be an http:// or https:// URL with host and port, e.g. http://192.0.2.7:50051')
  .meta({ example: 'http://127.0.0.1:50051' })

export const MAX_CHUNK_SIZE = 64 * 1024 * 1024

/**
 * The most chunks one content may have: its manifest (32 bytes a chunk) must reach a downloader in one
 * message, and a size that needs more chunks of its chunkSize than this cannot be what anyone serves.
 */
export const MAX_MANIFEST_CHUNKS = 1 << 20

export const FileEntry = z
  .object({
    name: FileName,
    // Absent (older clients) is the top.
    path: FolderPath.default(''),
    size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    sha256: Sha256,
    chunkSize: z.number().int().min(1).max(MAX_CHUNK_SIZE),
    manifest: Sha256,
  })
  .refine((file) => Math.ceil(file.size / file.chunkSize) <= MAX_MANIFEST_CHUNKS, {
    message: `needs more than ${MAX_MANIFEST_CHUNKS} chunks of chunkSize; no manifest is that long`,
    path: ['size'],
  })
  .meta({ id: 'FileEntry' })

/**
 * A peer's public-key fingerprint: `sha256/` and the unpadded base64url SHA-256 of its TLS certificate's
 * SubjectPublicKeyInfo. A downloader dials the peer only if the certificate it presents hashes to it.
 */
export const PeerKey = z
  .string()
  .regex(/^sha256\/[A-Za-z0-9_-]{43}$/, 'must be sha256/ and 43 base64url characters (the SPKI fingerprint)')
  .meta({ id: 'PeerKey', example: 'sha256/47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU' })

/** A listed peer's key: null for a peer serving plaintext (`--plaintext`, an http:// URL). */
const ListedKey = PeerKey.nullable().meta({
  description: 'The SPKI fingerprint to pin when dialing it; null: the peer serves plaintext',
})

export const Source = z.object({ username: Username, url: z.string(), key: ListedKey }).meta({ id: 'Source' })

export const Result = z
  .object({
    name: z.string(),
    path: z.string().meta({ description: 'The folder the best-matching holder keeps it in ("" at the top)' }),
    size: z.number().int(),
    sha256: Sha256,
    chunkSize: z.number().int(),
    manifest: Sha256,
    sourceCount: z.number().int().meta({ description: 'How many live peers hold it, all of them' }),
    sources: z.array(Source).meta({
      description:
        'Live holders in random order: at most the `sources` asked for in a name search (default 8), up to 64 by hash',
    }),
  })
  .meta({ id: 'Result' })

/**
 * One sha256's variants in the order to try them, ranked by the networks of their live holders (see
 * variantsByHash; holders that publish it with different manifest, size or chunk size are kept
 * apart); the first one's fields are repeated at the top.
 */
export const FileVariants = z
  .intersection(Result, z.object({ variants: z.array(Result) }))
  .meta({ id: 'FileVariants' })

export const Peer = z
  .object({
    username: Username,
    url: z.string(),
    key: ListedKey,
    state: z.enum(['up', 'down']),
    files: z.number().int(),
    lastSeen: z.string().meta({ format: 'date-time' }),
  })
  .meta({ id: 'Peer' })

export const Account = z
  .intersection(Peer, z.object({ createdAt: z.string().meta({ format: 'date-time' }) }))
  .meta({ id: 'Account' })

export const NewAccount = z.object({ username: Username, password: Password }).meta({ id: 'NewAccount' })

export const ErrorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string() }) })
  .meta({ id: 'Error' })

export const LoginRequest = z
  .object({
    username: Username,
    password: Password,
    /** Omitted: a viewer session (the dashboard) that reads as this user without bringing the peer up. */
    url: PeerUrl.optional(),
    /** The key its https:// url serves (see PeerKey); absent for a plaintext peer. */
    key: PeerKey.optional(),
  })
  .meta({ id: 'LoginRequest' })

export const TokenGrant = z
  .object({
    token: z.string(),
    expiresAt: z.string().meta({ format: 'date-time' }),
    leaseSeconds: z.number().int(),
  })
  .meta({ id: 'TokenGrant' })

/** A heartbeat's answer: a fresh token only once the caller's has used half its lifetime. */
export const HeartbeatResponse = z
  .object({
    token: z.string().optional().meta({
      description:
        'A fresh session token, present only once the caller’s token has used half its lifetime; absent: keep using the current one',
    }),
    expiresAt: z.string().meta({
      format: 'date-time',
      description: 'When the token to use from now on (the fresh one, or else the caller’s) expires',
    }),
    leaseSeconds: z.number().int(),
  })
  .meta({ id: 'HeartbeatResponse' })

export const CallTokenRequest = z
  .object({ audience: Username.meta({ description: 'the username of the peer the token is for' }) })
  .meta({ id: 'CallTokenRequest' })

export const RelayTokenRequest = z
  .object({
    relay: z
      .string()
      .max(2048)
      .refine((value) => {
        try {
          const url = new URL(value)
          return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value
        } catch {
          return false
        }
      }, 'must be a relay’s origin: http:// or https://, host and port if not the default, nothing after')
      .meta({
        description: 'the origin of the relay the token is for',
        example: 'http://203.0.113.5:7000',
      }),
  })
  .meta({ id: 'RelayTokenRequest' })

export const CallToken = z
  .object({ token: z.string(), expiresAt: z.string().meta({ format: 'date-time' }) })
  .meta({ id: 'CallToken' })

export const SessionState = z
  .object({
    open: z.boolean(),
    up: z.boolean().meta({
      description: 'The session is a peer’s (not a viewer’s) and that peer holds a lease: it is listed as up',
    }),
  })
  .meta({ id: 'SessionState' })

export const LoginResponse = z
  .intersection(TokenGrant, z.object({ peer: Peer }))
  .meta({ id: 'LoginResponse' })

export const IndexReplace = z.object({ files: z.array(FileEntry) }).meta({ id: 'IndexReplace' })

export const IndexPatch = z
  .object({ add: z.array(FileEntry).default([]), remove: z.array(Sha256).default([]) })
  .meta({ id: 'IndexPatch' })

export const IndexCount = z.object({ files: z.number().int() }).meta({ id: 'IndexCount' })

/** Where the directory's publishing stood at an answer: opaque, only ever given back as `since`. */
export const SearchCursor = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be the cursor of an earlier search answer')
  .meta({ example: 'cDQy' })

export const SearchResponse = z
  .object({
    query: z.string(),
    results: z.array(Result),
    cursor: SearchCursor.meta({
      description:
        "The directory's publishing position when this answer was read: `since=<cursor>` answers only what was published after it",
    }),
  })
  .meta({ id: 'SearchResponse' })

export const Stats = z
  .object({
    peersUp: z.number().int(),
    peersTotal: z.number().int(),
    files: z.number().int(),
    uniqueFiles: z.number().int(),
    bytes: z.number().int(),
  })
  .meta({ id: 'Stats' })

export const Folder = z
  .object({
    name: FileName,
    files: z.number().int().meta({ description: 'Files in it and in every folder below it' }),
    bytes: z.number().int().meta({ description: 'Their sizes added up' }),
  })
  .meta({ id: 'Folder' })

/** One level of what a peer shares (GET /v1/peers/{username}/files). */
export const PeerFiles = z
  .object({
    username: Username,
    state: z.enum(['up', 'down']),
    key: ListedKey,
    path: z.string().meta({ description: 'The folder listed ("" the top)' }),
    folders: z.array(Folder).meta({
      description: 'The folders right below it, by name (on the first page only; none when recursive)',
    }),
    files: z.array(FileEntry).meta({
      description: 'Its files by name; when recursive, every file below it by path then name',
    }),
    cursor: z
      .string()
      .optional()
      .meta({ description: 'Present when more files follow: pass it for the next page' }),
  })
  .meta({ id: 'PeerFiles' })

export const PeerPage = z.object({ peers: z.array(Peer), total: z.number().int() }).meta({ id: 'PeerPage' })

export type FileEntry = z.infer<typeof FileEntry>
export type Result = z.infer<typeof Result>
export type FileVariants = z.infer<typeof FileVariants>
export type Peer = z.infer<typeof Peer>
export type Account = z.infer<typeof Account>
