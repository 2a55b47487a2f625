import hpack from 'hpack.js'

/**
 * HPACK (RFC 7541) for the HTTP/2 download session: requests are encoded as literals that never touch
 * the peer's header table (a few headers per call: nothing worth indexing), and responses are decoded
 * with hpack.js's primitives against a table bounded by what this side advertised.
 */

/** The header table size this side allows (SETTINGS_HEADER_TABLE_SIZE left at its default). */
export const HEADER_TABLE_BYTES = 4096

/**
 * The most a response's header list may hold once decoded (RFC 7541's entry size: name, value and 32
 * per field); advertised as SETTINGS_MAX_HEADER_LIST_SIZE. Bounds the expansion of a small block that
 * names large table entries again and again.
 */
export const MAX_HEADER_LIST_BYTES = 64 * 1024

/** A header block this side cannot decode, or will not: the connection is lost (COMPRESSION_ERROR). */
export class HeaderBlockError extends Error {
  override readonly name = 'HeaderBlockError'
}

/** One HTTP/2 connection's decoding state: the dynamic table persists across its header blocks. */
export class HeaderBlockDecoder {
  readonly #table = hpack.table.create({ maxSize: HEADER_TABLE_BYTES })

  /** The fields of one whole header block (HEADERS and its CONTINUATIONs), in order. */
  decode(block: Buffer): Array<[string, string]> {
    const fields: Array<[string, string]> = []
    const decoder = hpack.decoder.create()
    if (block.length > 0) decoder.push(block)
    let listBytes = 0
    try {
      while (!decoder.isEmpty()) {
        const field = this.#field(decoder)
        if (!field) continue
        listBytes += field[0].length + field[1].length + 32
        if (listBytes > MAX_HEADER_LIST_BYTES)
          throw new HeaderBlockError(`sent headers of more than ${MAX_HEADER_LIST_BYTES} bytes`)
        fields.push(field)
      }
    } catch (err) {
      if (err instanceof HeaderBlockError) throw err
      throw new HeaderBlockError(`sent a malformed header block: ${(err as Error).message}`)
    }
    return fields
  }

  /** One representation (RFC 7541 §6): a field, or undefined for a table size update. */
  #field(decoder: Decoder): [string, string] | undefined {
    if (decoder.decodeBit()) {
      const entry = this.#table.lookup(decoder.decodeInt())
      return [entry.name, entry.value]
    }
    const incremental = decoder.decodeBit() === 1
    if (!incremental) {
      if (decoder.decodeBit()) {
        this.#table.updateSize(decoder.decodeInt()) // refuses more than HEADER_TABLE_BYTES
        return undefined
      }
      decoder.decodeBit() // never indexed: nothing this side forwards
    }
    const index = decoder.decodeInt()
    const name = index === 0 ? decodeString(decoder) : this.#table.lookup(index).name
    const value = decodeString(decoder)
    if (incremental) this.#table.add(name, value, name.length, value.length)
    return [name, value]
  }
}

type Decoder = ReturnType<typeof hpack.decoder.create>

/**
 * A string literal (RFC 7541 §5.2). A plain one is read here: hpack.js would make an empty one with the
 * deprecated `new Buffer(0)`, a warning on the daemon's stderr once bundled. Strings start on an octet.
 */
function decodeString(decoder: Decoder): string {
  if (decoder.buffer.has(1) && (decoder.buffer.peekUInt8() & 0x80) !== 0)
    return Buffer.from(decoder.decodeStr() as number[]).toString('latin1')
  decoder.decodeBit()
  const length = decoder.decodeInt()
  if (length === 0) return ''
  if (!decoder.buffer.has(length)) throw new HeaderBlockError('sent a string longer than its block')
  return decoder.buffer.take(length).toString('latin1')
}

/**
 * A header block of literal fields without indexing and with new names (RFC 7541 §6.2.2), led by a
 * table size update to 0 (§6.3): a server that shrank its table since needs one, and this side
 * indexes nothing.
 */
export function encodeHeaderBlock(fields: Array<[string, string]>): Buffer {
  const parts: Buffer[] = [Buffer.of(0x20)]
  for (const [name, value] of fields) {
    parts.push(Buffer.of(0), encodeString(name.toLowerCase()), encodeString(value))
  }
  return Buffer.concat(parts)
}

/** A string literal, not Huffman-coded: its length as a 7-bit-prefix integer, then its octets. */
function encodeString(text: string): Buffer {
  const octets = Buffer.from(text, 'latin1')
  return Buffer.concat([encodeInteger(octets.length, 7), octets])
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1), the prefix's other bits left 0. */
export function encodeInteger(value: number, prefixBits: number): Buffer {
  const max = 2 ** prefixBits - 1
  if (value < max) return Buffer.of(value)
  const octets = [max]
  let rest = value - max
  while (rest >= 128) {
    octets.push((rest % 128) + 128)
    rest = Math.floor(rest / 128)
  }
  octets.push(rest)
  return Buffer.from(octets)
}
