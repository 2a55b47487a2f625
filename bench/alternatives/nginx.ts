// nginx (Debian's `nginx`, detected, never installed by the bench) serving one file with sendfile (and
// over HTTPS on a second port), as
// one process (no master, one worker's work in it) so its CPU-seconds are one /proc entry.
import { type ChildProcess, spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { existsSync, linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { selfSignedCertificate } from '../../peer/src/daemon/self-signed-certificate.ts'
import { freePort } from '../../tests/support/ports.ts'

const NGINX = '/usr/sbin/nginx'

export type NginxServer = { url: string; httpsUrl: string; pid: number; close: () => void }

/** nginx serving `file` on 127.0.0.1, or undefined when the binary is missing. */
export async function startNginx(file: string): Promise<NginxServer | undefined> {
  if (!existsSync(NGINX)) return undefined
  const prefix = mkdtempSync(join(tmpdir(), 'peerdir-bench-nginx-'))
  const root = join(prefix, 'root')
  mkdirSync(root)
  linkSync(file, join(root, basename(file)))
  const port = await freePort()
  const httpsPort = await freePort()
  // HTTPS with a P-256 certificate, as a peer's: curl over it is the bar peer links over TLS are held to.
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  writeFileSync(join(prefix, 'cert.pem'), selfSignedCertificate(privateKey, publicKey, '127.0.0.1'))
  writeFileSync(join(prefix, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const temp = (name: string) => `${name}_temp_path ${join(prefix, name)};`
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `daemon off;
master_process off;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')};
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}
  server {
    listen 127.0.0.1:${port};
    listen 127.0.0.1:${httpsPort} ssl;
    ssl_certificate ${join(prefix, 'cert.pem')};
    ssl_certificate_key ${join(prefix, 'key.pem')};
    root ${root};
  }
}
`,
  )
  const child: ChildProcess = spawn(
    NGINX,
    ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', join(prefix, 'nginx.conf')],
    { stdio: 'ignore' },
  )
  const close = () => {
    child.kill('SIGKILL')
    rmSync(prefix, { recursive: true, force: true })
  }
  try {
    await listening(port, child)
  } catch (err) {
    close()
    throw err
  }
  return {
    url: `http://127.0.0.1:${port}/${basename(file)}`,
    httpsUrl: `https://127.0.0.1:${httpsPort}/${basename(file)}`,
    pid: child.pid ?? 0,
    close,
  }
}

async function listening(port: number, child: ChildProcess) {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}`)
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => resolve(true)).once('error', () => resolve(false))
      socket.once('close', () => socket.destroy())
      socket.once('connect', () => socket.end())
    })
    if (up) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('nginx did not start listening')
}
