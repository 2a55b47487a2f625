import { spawnSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A fresh self-signed certificate for an IP address (trusted by whoever is given it as NODE_EXTRA_CA_CERTS). */
export function selfSignedCertificate(ip = '127.0.0.1') {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-tls-'))
  const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')]
  const made = spawnSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${ip}`,
    '-addext',
    `subjectAltName=IP:${ip}`,
    '-keyout',
    key,
    '-out',
    cert,
  ])
  if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr}`)
  return { cert, key }
}
