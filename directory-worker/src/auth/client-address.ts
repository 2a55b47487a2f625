/**
 * The key that login throttling counts a client under. IPv6 clients are counted by their /64, as
 * one subscriber is usually handed a whole /64 and could otherwise step through its addresses.
 * What is not an IP address (no socket, a header the runtime did not set) shares one key.
 */
export function addressKey(raw: string | undefined): string {
  const address = (raw ?? '')
    .trim()
    .replace(/^\[|\]$/g, '')
    .replace(/%.*$/, '')
    .toLowerCase()
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(address)
  if (mapped?.[1]) return mapped[1]
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(address)) return address
  const groups = ipv6Groups(address)
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : 'unknown'
}

/**
 * The network a client stands for when holders are counted apart (variants of a content): an IPv4
 * /24 or an IPv6 /48, what one subscriber or one rented server usually has to itself. Accounts are
 * free; networks are not, so a flood of accounts from a few addresses counts as a few networks.
 */
export function networkKey(raw: string | undefined): string {
  const key = addressKey(raw)
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(key)) return `${key.split('.').slice(0, 3).join('.')}.0/24`
  if (key.endsWith('::/64')) return `${key.split(':').slice(0, 3).join(':')}::/48`
  return key
}

function ipv6Groups(address: string): string[] | undefined {
  if (!/^[0-9a-f:.]{2,45}$/.test(address) || address.split('::').length > 2) return undefined
  const [head = '', tail] = address.split('::')
  const split = (part: string) => (part === '' ? [] : part.split(':'))
  const left = split(head)
  const right = tail === undefined ? [] : split(tail)
  const missing = 8 - left.length - right.length
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right]
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined
  return groups.map((g) => g.replace(/^0+(?=.)/, ''))
}

/**
 * The client a reverse proxy reports: the last X-Forwarded-For entry, the one the proxy itself
 * appended. Earlier entries come from the client and prove nothing.
 */
export function forwardedClient(header: string | undefined): string | undefined {
  const last = header?.split(',').at(-1)?.trim()
  return last || undefined
}
