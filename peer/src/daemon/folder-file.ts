import { stat } from 'node:fs/promises'
import { Code, ConnectError } from '@connectrpc/connect'
import { hashFile } from '../content/manifest.ts'
import { placeUnder } from '../content/safe-path.ts'
import type { ShareIndex } from '../content/share-index.ts'
import type { Wanted } from './downloads.ts'

/**
 * One file of a folder get (`peer get alice/<folder>`): the folder and name its publisher gives it, from
 * the network, placed under the out folder or refused before anything is written; and a verified copy
 * already in that place (an earlier run's) counted as done, so a rerun fetches only what is missing.
 */
export function folderFilePlace(outDir: string, folder: string, name: string): string {
  const place = placeUnder(outDir, folder, name)
  if ('refused' in place)
    throw new ConnectError(
      `refused "${folder}/${name}" from the network: ${place.refused}`,
      Code.InvalidArgument,
    )
  return place.file
}

/** The variants of `wanted` saved under `name`: the publisher's name, not the one the directory lists. */
export const savedAs = (wanted: Wanted, name: string): Wanted => ({
  ...wanted,
  variants: wanted.variants.map((variant) => ({ ...variant, name })),
})

/**
 * The size of `file` when it already holds `wanted`: known to the share index at that path (unchanged
 * since), or hashed now when its size is one the content has. Anything else there is left alone.
 */
export async function contentThere(
  file: string,
  wanted: Wanted,
  index: ShareIndex,
): Promise<number | undefined> {
  let info: Awaited<ReturnType<typeof stat>>
  try {
    info = await stat(file)
  } catch {
    return undefined
  }
  if (!info.isFile() || !wanted.variants.some((v) => v.size === info.size)) return undefined
  const shared = index.get(wanted.sha256)
  if (shared?.path === file && shared.mtimeMs === info.mtimeMs && shared.size === info.size) return info.size
  try {
    return (await hashFile(file)).sha256 === wanted.sha256 ? info.size : undefined
  } catch {
    return undefined
  }
}
