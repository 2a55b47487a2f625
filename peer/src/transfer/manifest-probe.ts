import type { Variant } from '../../../contract/variant.ts'
import { chunkCount, manifestHash } from '../content/manifest.ts'
import { describeSourceFailure } from './download-errors.ts'
import { type Connect, type PooledSource, type Source, SourcePool, type SourceReport } from './source-pool.ts'

/**
 * Asking holders for a content's manifest, many at once with a short deadline. The manifest is a
 * few KiB and the first thing a holder sends, so a holder that cannot send it in seconds is no
 * source; asked one by one with the transfer's stall timeout, a flood of holders that accept a
 * connection and never answer (a tarpit) cost 20 s each. It proves nothing about the bytes: a
 * manifest that matches the directory's may still not make the sha256 (see FalseManifestError).
 */

/** How long a holder gets to send the manifest. */
export const MANIFEST_TIMEOUT_MS = 5000
/** Holders asked at once. */
export const MANIFEST_ASKS = 8

export type ManifestAnswer = { chunkHashes: Buffer[] } | { failures: { source: PooledSource; why: string }[] }

/** Whether a holder's manifest is the one the directory lists for this variant. */
export function manifestFits(
  m: { size: number; chunkSize: number; chunkHashes: Buffer[] },
  target: Variant,
): boolean {
  // A size that does not fit the manifest's chunk count is refused here, with everything else.
  return (
    m.size === target.size &&
    m.chunkSize === target.chunkSize &&
    m.chunkHashes.length === chunkCount(target.size, target.chunkSize) &&
    manifestHash(m.chunkHashes) === target.manifest
  )
}

/**
 * The chunk hashes from the first of `sources` whose manifest fits `target`, asking MANIFEST_ASKS of
 * them at a time (the next as each one fails), each for at most `timeoutMs`; or every source's
 * failure when none fits. Throws only when `signal` aborts.
 */
export async function firstFittingManifest(
  sources: PooledSource[],
  target: Variant,
  signal: AbortSignal,
  timeoutMs = MANIFEST_TIMEOUT_MS,
): Promise<ManifestAnswer> {
  const failures: { source: PooledSource; why: string }[] = []
  const done = new AbortController()
  let next = 0
  let found: Buffer[] | undefined
  const ask = async (): Promise<void> => {
    while (!found && next < sources.length) {
      const source = sources[next++] as PooledSource
      const deadline = AbortSignal.any([signal, done.signal, AbortSignal.timeout(timeoutMs)])
      try {
        const m = await source.link.manifest(target.sha256, deadline)
        if (found) return
        if (manifestFits(m, target)) {
          found = m.chunkHashes
          done.abort()
          return
        }
        failures.push({ source, why: 'sent a manifest that does not match the directory’s' })
      } catch (err) {
        if (signal.aborted) throw err
        if (found) return
        failures.push({
          source,
          why: deadline.aborted
            ? `sent no manifest within ${timeoutMs / 1000} s`
            : describeSourceFailure(err),
        })
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(MANIFEST_ASKS, sources.length) }, ask))
  return found ? { chunkHashes: found } : { failures }
}

/** Variants whose holders are asked at once, ahead of the one being tried. */
export const PROBED_VARIANTS = 8
/** Holders of one variant asked in a probe. */
const PROBED_HOLDERS = 4

/**
 * `variants` in their order, each once its probe found a holder that sends its manifest (a lone
 * variant at once, unprobed: its download asks for the manifest anyway); those whose probe found none
 * after all the others (a holder slow to answer may yet serve), each told to
 * `unanswered` with its holders' failures as soon as that is known. Probes run for a window of
 * PROBED_VARIANTS at once, started as the caller asks for the next variant, so a flood of bogus
 * variants ranked ahead of the true one costs about one MANIFEST_TIMEOUT_MS per window, not the stall
 * timeout per holder.
 */
export async function* probedVariants<V extends Variant & { sources: Source[] }>(
  variants: V[],
  options: {
    connect: Connect
    signal: AbortSignal
    unanswered: (variant: V, holders: SourceReport[]) => void
  },
): AsyncGenerator<V> {
  if (variants.length <= 1) {
    yield* variants
    return
  }
  const probes: Promise<SourceReport[] | undefined>[] = []
  const probe = (variant: V) => {
    const pool = new SourcePool(options.connect)
    pool.add(variant.sources.slice(0, PROBED_HOLDERS))
    return firstFittingManifest(pool.live(), variant, options.signal)
      .then(
        (answer) =>
          'chunkHashes' in answer
            ? undefined
            : answer.failures.map(({ source, why }) => ({ ...source, bytes: 0, dropped: why })),
        () => [],
      )
      .finally(() => pool.close())
  }
  const deferred: V[] = []
  for (const [i, variant] of variants.entries()) {
    while (probes.length < Math.min(variants.length, i + PROBED_VARIANTS))
      probes.push(probe(variants[probes.length] as V))
    const failures = await probes[i]
    if (!failures) {
      yield variant
      continue
    }
    deferred.push(variant)
    options.unanswered(variant, failures)
  }
  yield* deferred
}
