/** Resolves with the first truthy answer of `probe`, asked every 100 ms, or fails naming `what`. */
export async function until<T>(
  probe: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs = 30_000,
) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Waits until the wall clock reads `epochMs`: for deadlines the test knows (a token's expiry). */
export async function sleepUntil(epochMs: number) {
  const wait = epochMs - Date.now()
  if (wait > 0) await new Promise((r) => setTimeout(r, wait))
}
