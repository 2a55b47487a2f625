import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto'
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TlsFiles, TlsIdentity } from '../wire/listening-port.ts'
import { spkiFingerprint } from '../wire/peer-connection.ts'
import { selfSignedCertificate } from './self-signed-certificate.ts'

/** What a daemon serves TLS with, and the key it is known by (the directory lists it; callers pin it). */
export type PeerIdentity = TlsIdentity & { fingerprint: string }

const KEY_FILE = 'peer-key.pem'
const CERT_FILE = 'peer-cert.pem'

/**
 * The daemon's own key pair and self-signed certificate, made on its first start in its state folder
 * (0600, in a 0700 folder) and kept: a peer's key is its identity, so a restart keeps it. P-256
 * (ECDSA): TLS in Node signs and verifies it faster than Ed25519 (README, "Encrypted links").
 */
export function ownIdentity(stateDir: string, username: string): PeerIdentity {
  const keyPath = join(stateDir, KEY_FILE)
  const certPath = join(stateDir, CERT_FILE)
  try {
    return identityOf({ cert: readFileSync(certPath), key: readFileSync(keyPath) })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const cert = selfSignedCertificate(privateKey, publicKey, `peerdir ${username}`)
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  // Written beside and renamed into place, key last: a crash never leaves a certificate without its key.
  for (const [path, text] of [
    [certPath, cert],
    [keyPath, key],
  ] as const) {
    writeFileSync(`${path}.new`, text, { mode: 0o600 })
    chmodSync(`${path}.new`, 0o600)
    renameSync(`${path}.new`, path)
  }
  return identityOf({ cert, key })
}

/** A CA-issued certificate (`--tls-cert/--tls-key`): its SPKI is then the key. */
export function identityFromFiles(files: TlsFiles): PeerIdentity {
  return identityOf({ cert: readFileSync(files.certPath), key: readFileSync(files.keyPath) })
}

function identityOf(identity: TlsIdentity): PeerIdentity {
  const certificate = new X509Certificate(identity.cert)
  // A certificate for another key would make every caller refuse us: say so at start instead.
  if (!certificate.checkPrivateKey(createPrivateKey(identity.key))) {
    throw new Error('the TLS certificate and key do not belong together')
  }
  return { ...identity, fingerprint: spkiFingerprint(certificate) }
}
