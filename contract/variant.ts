/**
 * A content's identity: its sha256 with the manifest, size and chunk size it is published with. Holders
 * that publish one sha256 with a different manifest, size or chunk size hold different variants, never
 * merged. A FileEntry is a variant with its name; a Result is one with its name and live holders.
 */
export type Variant = { sha256: string; manifest: string; size: number; chunkSize: number }

/** One key per variant for the store, the search answers and the dashboard. */
export const variantKey = (variant: Variant) =>
  `${variant.sha256}:${variant.manifest}:${variant.size}:${variant.chunkSize}`

export const sameVariant = (a: Variant, b: Variant) => variantKey(a) === variantKey(b)

/** How many of `results` are variants of each sha256. */
export function variantCounts(results: { sha256: string }[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const { sha256 } of results) counts.set(sha256, (counts.get(sha256) ?? 0) + 1)
  return counts
}
