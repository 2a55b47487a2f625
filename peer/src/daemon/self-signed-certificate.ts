import { type KeyObject, randomBytes, sign } from 'node:crypto'

/**
 * A self-signed X.509 certificate for a key pair, written in DER by hand: node:crypto signs and reads
 * certificates but cannot make one, and the few bytes a peer's certificate needs do not justify a
 * dependency. The certificate carries no host name and no real expiry (RFC 5280's 99991231235959Z): a
 * peer is known by its key (the SPKI fingerprint the directory lists), never by a CA or a name.
 */
export function selfSignedCertificate(
  privateKey: KeyObject,
  publicKey: KeyObject,
  commonName: string,
): string {
  const algorithm = signatureAlgorithm(privateKey)
  const name = sequence(set(sequence(objectId('2.5.4.3'), utf8(commonName))))
  const serial = randomBytes(16)
  // Positive and of minimal length as DER demands: the first byte neither zero nor with its top bit set.
  serial[0] = ((serial[0] as number) & 0x7f) | 0x40
  const tbs = sequence(
    explicit(0, integer(Buffer.from([2]))),
    integer(serial),
    algorithm.identifier,
    name,
    sequence(utcTime(new Date(Date.now() - 3600_000)), der(0x18, Buffer.from('99991231235959Z'))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  )
  const signature = sign(algorithm.digest, tbs, privateKey)
  const certificate = sequence(tbs, algorithm.identifier, der(0x03, Buffer.from([0]), signature))
  const lines = certificate.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`
}

function signatureAlgorithm(key: KeyObject): { identifier: Buffer; digest: string | null } {
  if (key.asymmetricKeyType === 'ed25519')
    return { identifier: sequence(objectId('1.3.101.112')), digest: null }
  if (key.asymmetricKeyType === 'ec') {
    // ecdsa-with-SHA256; node:crypto's ECDSA signatures are DER (r, s) already, as X.509 wants them.
    return { identifier: sequence(objectId('1.2.840.10045.4.3.2')), digest: 'sha256' }
  }
  throw new Error(`cannot sign a certificate with a ${key.asymmetricKeyType} key`)
}

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts)
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body])
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length])
  const bytes: number[] = []
  for (let left = length; left > 0; left = Math.floor(left / 256)) bytes.unshift(left % 256)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

const sequence = (...parts: Buffer[]) => der(0x30, ...parts)
const set = (...parts: Buffer[]) => der(0x31, ...parts)
const explicit = (n: number, inner: Buffer) => der(0xa0 + n, inner)
const utf8 = (text: string) => der(0x0c, Buffer.from(text, 'utf8'))
/** A non-negative INTEGER from its big-endian bytes (a leading zero keeps the sign bit clear). */
const integer = (bytes: Buffer) =>
  der(0x02, (bytes[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes)

function utcTime(date: Date): Buffer {
  const text = date.toISOString().replace(/[-:T]/g, '').slice(2, 14)
  return der(0x17, Buffer.from(`${text}Z`))
}

function objectId(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number)
  const bytes = [first * 40 + second]
  for (const arc of rest) {
    const base128 = [arc & 0x7f]
    for (let left = arc >>> 7; left > 0; left >>>= 7) base128.unshift((left & 0x7f) | 0x80)
    bytes.push(...base128)
  }
  return der(0x06, Buffer.from(bytes))
}
