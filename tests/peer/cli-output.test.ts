import { describe, expect, it } from 'vitest'
import { formatBytes, table } from '../../peer/src/cli/format.ts'
import { printable } from '../../peer/src/cli/output.ts'

describe('what the CLI prints for people', () => {
  it('shows control characters from the network as escapes, keeping line breaks', () => {
    const hostile = 'http://x:1/\u001b[2J\u001b[31mred\u0007\u009b\r'
    expect(printable(`${hostile}\nnext`)).toBe('http://x:1/\\x1b[2J\\x1b[31mred\\x07\\x9b\\x0d\nnext')
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    expect(printable(table(['URL'], [[hostile]]))).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
  })

  it('rounds byte figures', () => {
    expect(formatBytes(217.98076857402444)).toBe('218 B')
    expect(formatBytes(1536)).toBe('1.50 KiB')
    expect(formatBytes(6 * 1024 * 1024)).toBe('6.00 MiB')
  })
})
