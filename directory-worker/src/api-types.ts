import type { z } from '@hono/zod-openapi'
import type * as schemas from './schemas.ts'

/**
 * The REST API's bodies as the directory validates and answers them. Clients (the peer's
 * DirectoryClient) are typed by these, so a schema change that breaks them fails `tsc`, not a peer.
 * Type-only: importing this costs a bundle nothing.
 */
export type FileEntry = z.input<typeof schemas.FileEntry>
export type Source = z.output<typeof schemas.Source>
export type Result = z.output<typeof schemas.Result>
export type FileVariants = z.output<typeof schemas.FileVariants>
export type Peer = z.output<typeof schemas.Peer>
export type LoginRequest = z.input<typeof schemas.LoginRequest>
export type LoginResponse = z.output<typeof schemas.LoginResponse>
export type TokenGrant = z.output<typeof schemas.TokenGrant>
export type HeartbeatResponse = z.output<typeof schemas.HeartbeatResponse>
export type CallTokenRequest = z.input<typeof schemas.CallTokenRequest>
export type RelayTokenRequest = z.input<typeof schemas.RelayTokenRequest>
export type CallToken = z.output<typeof schemas.CallToken>
export type SessionState = z.output<typeof schemas.SessionState>
export type IndexReplace = z.input<typeof schemas.IndexReplace>
export type IndexPatch = z.input<typeof schemas.IndexPatch>
export type IndexCount = z.output<typeof schemas.IndexCount>
export type SearchResponse = z.output<typeof schemas.SearchResponse>
export type PeerPage = z.output<typeof schemas.PeerPage>
export type Folder = z.output<typeof schemas.Folder>
export type PeerFiles = z.output<typeof schemas.PeerFiles>
export type Stats = z.output<typeof schemas.Stats>
