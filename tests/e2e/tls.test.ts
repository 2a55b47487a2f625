import { createHash, randomBytes, X509Certificate } from 'node:crypto'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { dirname, join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS } from '../../peer/src/wire/connection-slots.ts'
import { spkiFingerprint } from '../../peer/src/wire/peer-connection.ts'
import { selfSignedCertificate } from '../support/certificates.ts'
import { heldFlood, sessionOnly } from '../support/connection-flood.ts'
import { until } from '../support/peer-process.ts'
import { commandUnavailable, mustSkip } from '../support/requirements.ts'
import { useTestNetwork } from '../support/test-network.ts'

/**
 * Peers serving a certificate of their own choosing (`--tls-cert`, `--tls-key`): HTTP/2 by ALPN, the
 * Download fast path and the downloader's own gRPC reader included. The certificate is a fresh
 * self-signed one for 127.0.0.1, as a private CA's would be; its SPKI is the key downloaders pin.
 */
const noOpenssl = mustSkip('OPENSSL', commandUnavailable('openssl', ['version'], 'openssl'))

const network = useTestNetwork()
const content = randomBytes(5 * 1024 * 1024 + 11)
const contentSha = createHash('sha256').update(content).digest('hex')
const floods: { close: () => void }[] = []

/** A GET to a daemon's gateway over HTTPS, trusting `ca`. */
function httpsGet(url: string, ca: Buffer, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>(
    (resolve, reject) => {
      https
        .get(url, { ca, headers }, (res) => {
          const parts: Buffer[] = []
          res.on('data', (part: Buffer) => parts.push(part))
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }),
          )
          res.on('error', reject)
        })
        .on('error', reject)
    },
  )
}
const certificates: string[] = []
afterEach(() => {
  for (const flood of floods.splice(0)) flood.close()
  for (const cert of certificates.splice(0)) rmSync(dirname(cert), { recursive: true, force: true })
})

describe('peers over TLS', () => {
  it.skipIf(noOpenssl)(
    '--tls-cert: its SPKI is the listed key, pinned by downloaders with no CA; the gateway plays in plain HTTP here and in HTTPS for those who trust it',
    async () => {
      const { cert, key } = selfSignedCertificate()
      certificates.push(cert)
      const source = await network.peer('tls-source', { args: ['--tls-cert', cert, '--tls-key', key] })
      expect(source.output()).toMatch(/serving peers on https:\/\/127\.0\.0\.1:/)
      expect(source.key).toBe(spkiFingerprint(new X509Certificate(readFileSync(cert))))
      writeFileSync(join(source.dir, 'sealed.bin'), content)
      await source.waitFor(/published changes: \+1/)

      // No CA trusted: the key the directory lists decides.
      const fetcher = await network.peer('tls-fetcher')
      const got = await fetcher.cli(['get', contentSha, '--json'])
      expect(got.code, got.stderr).toBe(0)
      expect(JSON.parse(got.stdout).bytesPerSource).toEqual({ 'tls-source': content.length })
      expect(readFileSync(join(fetcher.dir, 'sealed.bin')).equals(content)).toBe(true)

      // `peer url` names the gateway in plain HTTP, which the port answers this machine only.
      const printed = await source.cli(['url', 'sealed.bin'])
      expect(printed.code, printed.stderr).toBe(0)
      const url = printed.stdout.trim()
      expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${source.port}/content/${contentSha}\\?cap=`))
      const played = await fetch(url)
      expect(Buffer.from(await played.arrayBuffer()).equals(content)).toBe(true)
      // The same gateway over HTTPS, for a client that trusts the certificate; one that does not is told so.
      const secure = url.replace('http://', 'https://')
      const ca = readFileSync(cert)
      const whole = await httpsGet(secure, ca)
      expect(whole.status).toBe(200)
      expect(whole.headers['x-content-type-options']).toBe('nosniff')
      expect(whole.body.equals(content)).toBe(true)
      const part = await httpsGet(secure, ca, { range: 'bytes=100-199' })
      expect(part.status).toBe(206)
      expect(part.body.equals(content.subarray(100, 200))).toBe(true)
      await expect(httpsGet(secure, Buffer.alloc(0))).rejects.toThrow(/certificate/)
    },
  )

  // The TLS port admits connections through the same slots as the cleartext one (issue 14).
  it.skipIf(noOpenssl)(
    'serves a peer on another address while one address holds TLS sessions that open no stream',
    async () => {
      const { cert, key } = selfSignedCertificate()
      certificates.push(cert)
      const trusting = { env: { NODE_EXTRA_CA_CERTS: cert } }
      const source = await network.peer('tls-flooded', {
        args: ['--tls-cert', cert, '--tls-key', key],
        ...trusting,
      })
      writeFileSync(join(source.dir, 'sealed.bin'), content)
      await source.waitFor(/published changes: \+1/)
      const fetcher = await network.peer('tls-flood-fetcher', trusting)
      const ca = readFileSync(cert)
      const flood = await heldFlood(MAX_CONNECTIONS, () => sessionOnly(source.port, '127.0.0.2', { ca }))
      floods.push(flood)
      const got = await fetcher.cli(['get', contentSha, '--json'])
      expect(got.code, got.stderr).toBe(0)
      expect(JSON.parse(got.stdout).bytesPerSource['tls-flooded']).toBe(content.length)
      await until(
        async () => flood.held() <= MAX_CONNECTIONS_PER_ADDRESS,
        `the daemon to hold at most ${MAX_CONNECTIONS_PER_ADDRESS} of the flood (${flood.held()})`,
      )
    },
  )
})
