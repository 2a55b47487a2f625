const encoder = new TextEncoder()

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0)
  return diff === 0
}

const digest = async (text: string) =>
  new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)))

/**
 * Whether a presented secret is the configured one. Both are hashed first, so the comparison takes
 * as long whatever the lengths and wherever they differ.
 */
export async function secretMatches(presented: string, expected: string): Promise<boolean> {
  return constantTimeEqual(await digest(presented), await digest(expected))
}
