import { describe, expect, it } from 'vitest'
import { addressKey, forwardedClient, networkKey } from '../../directory-worker/src/auth/client-address.ts'

describe('the address login throttling counts a client under', () => {
  it('keeps IPv4, unmaps IPv4-mapped IPv6, and counts IPv6 by its /64', () => {
    expect(addressKey('127.0.0.2')).toBe('127.0.0.2')
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7')
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(addressKey('[2001:db8::7]')).toBe('2001:db8:0:0::/64')
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(addressKey('::1')).toBe('0:0:0:0::/64')
  })

  it('puts what is not an address under one shared key', () => {
    for (const junk of [undefined, '', 'localhost', '1:2:3', '1::2::3', '1:2:3:4:5:6:7:8:9', 'x'.repeat(100)])
      expect(addressKey(junk), String(junk)).toBe('unknown')
  })

  it('takes the last X-Forwarded-For entry, the one the trusted proxy appended', () => {
    expect(forwardedClient('198.51.100.1, 203.0.113.9')).toBe('203.0.113.9')
    expect(forwardedClient('203.0.113.9')).toBe('203.0.113.9')
    expect(forwardedClient(undefined)).toBeUndefined()
    expect(forwardedClient(' , ')).toBeUndefined()
  })

  it('counts holders apart by network: an IPv4 /24 or an IPv6 /48', () => {
    expect(networkKey('192.0.2.7')).toBe('192.0.2.0/24')
    expect(networkKey('::ffff:192.0.2.200')).toBe('192.0.2.0/24')
    expect(networkKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1::/48')
    expect(networkKey('2001:db8:1:ffff::1')).toBe('2001:db8:1::/48')
    expect(networkKey(undefined)).toBe('unknown')
  })
})
