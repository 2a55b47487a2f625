// The parts of hpack.js (RFC 7541) the HTTP/2 download session uses: its integer, string and Huffman
// decoding and its header table. The package ships no types.
declare module 'hpack.js' {
  type Entry = { name: string; value: string; nameSize: number }
  interface Decoder {
    /** The block's octets not yet decoded (obuf). */
    buffer: { has(n: number): boolean; peekUInt8(): number; take(n: number): Buffer }
    push(chunk: Buffer): void
    isEmpty(): boolean
    decodeBit(): number
    decodeInt(): number
    /** The octets of a string literal, Huffman-decoded when so marked. */
    decodeStr(): Buffer | number[]
  }
  interface Table {
    lookup(index: number): Entry
    add(name: string, value: string, nameSize: number, valueSize: number): void
    updateSize(size: number): void
  }
  const hpack: {
    decoder: { create(): Decoder }
    table: { create(options: { maxSize: number }): Table }
  }
  export default hpack
}
