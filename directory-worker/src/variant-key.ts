/**
 * What keeps a content's variants apart: holders that publish one sha256 with a different manifest,
 * size or chunk size are never merged. One key for the store, the search answers and the dashboard.
 */
export const variantKey = (content: { sha256: string; manifest: string; size: number; chunkSize: number }) =>
  `${content.sha256}:${content.manifest}:${content.size}:${content.chunkSize}`

/** How many of `results` are variants of each sha256. */
export function variantCounts(results: { sha256: string }[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const { sha256 } of results) counts.set(sha256, (counts.get(sha256) ?? 0) + 1)
  return counts
}
