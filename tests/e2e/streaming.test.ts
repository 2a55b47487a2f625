import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { nodeBin } from '../support/directory-process.ts'
import { startLyingPeer } from '../support/lying-peer.ts'
import { netnsUnavailable, otherMachine } from '../support/network-namespace.ts'
import { partFiles, recordedChunks } from '../support/part-files.ts'
import { type PeerProcess, peerBin, placeFile, until } from '../support/peer-process.ts'
import { mustSkip } from '../support/requirements.ts'
import { useTestNetwork } from '../support/test-network.ts'

const MiB = 1024 * 1024
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

const network = useTestNetwork()

/** A peer sharing `content` as `name`, serving at most `rate` bytes per second. */
async function source(username: string, name: string, content: Buffer, rate: string) {
  const peer = await network.peer(username, { args: ['--max-upload-rate', rate] })
  placeFile(peer.dir, name, content)
  await peer.waitFor(/published changes: \+1/)
  return peer
}

type Cat = { code: number | null; stdout: Buffer; stderr: string; firstBytesAt: number; exitedAt: number }

/** `peer cat` as a real process, noting when the first 64 KiB reached its stdout and when it exited. */
function cat(peer: PeerProcess, args: string[]): Promise<Cat> {
  return new Promise((resolve) => {
    const child = spawn(nodeBin, [peerBin, 'cat', ...args, '--port', String(peer.port)], {
      env: { ...process.env, PEERDIR_STATE_DIR: network.stateRoot },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const parts: Buffer[] = []
    let received = 0
    let firstBytesAt = Number.NaN
    let stderr = ''
    child.stdout.on('data', (part: Buffer) => {
      parts.push(part)
      received += part.length
      if (received >= 64 * 1024 && Number.isNaN(firstBytesAt)) firstBytesAt = performance.now()
    })
    child.stderr.on('data', (part) => {
      stderr += part
    })
    child.on('exit', (code) =>
      resolve({ code, stdout: Buffer.concat(parts), stderr, firstBytesAt, exitedAt: performance.now() }),
    )
  })
}

type Answer = { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/** One HTTP request to a daemon's gateway, with whatever Host and Range headers the test gives. */
function request(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        const parts: Buffer[] = []
        res.on('data', (part: Buffer) => parts.push(part))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe('peer cat', () => {
  it('streams verified bytes long before the download ends, and a liar’s bytes never reach stdout', async () => {
    const content = randomBytes(64 * MiB)
    await source('capped', 'film.mp4', content, '4M')
    const chunks = Array.from({ length: 64 }, (_, i) => i)
    const liar = await startLyingPeer({
      directoryUrl: network.directoryUrl,
      username: 'liar',
      content,
      name: 'film.mp4',
      corruptChunks: chunks,
    })
    try {
      const viewer = await network.peer('viewer')
      const started = performance.now()
      const result = await cat(viewer, ['film.mp4'])
      expect(result.code, result.stderr).toBe(0)
      expect(result.stderr).toBe('')
      expect(sha(result.stdout)).toBe(sha(content))
      // The liar was asked (every chunk it has is false) and none of its bytes got through.
      expect(liar.downloadCalls()).toBeGreaterThan(0)
      // The first bytes came in the first third of the whole transfer's time (about 16 s).
      expect(result.firstBytesAt - started).toBeLessThan((result.exitedAt - started) / 3)
      // Kept (the default): the file is in the shared folder, verified.
      expect(readdirSync(viewer.dir)).toContain('film.mp4')
    } finally {
      await liar.close()
    }
  })

  it('shares one transfer with a `peer get` of the same content', async () => {
    // 8 s at 2 MiB/s: time enough for a second CLI to join before the transfer ends.
    const content = randomBytes(16 * MiB)
    await source('album-seed', 'album.zip', content, '2M')
    const both = await network.peer('both')
    const catting = cat(both, [sha(content)])
    const status = async () =>
      JSON.parse((await both.cli(['status', '--json'])).stdout) as { activeDownloads: number }
    await until(async () => (await status()).activeDownloads === 1, 'the cat to start its download')
    const got = await both.cli(['get', 'album.zip', '--json'])
    expect(got.code, got.stderr).toBe(0)
    const catted = await catting
    expect(catted.code, catted.stderr).toBe(0)
    expect(sha(catted.stdout)).toBe(sha(content))
    // One transfer: the source sent the file once, and one copy landed.
    const sent = Object.values(JSON.parse(got.stdout).bytesPerSource as Record<string, number>)
    expect(sent.reduce((a, b) => a + b, 0)).toBe(content.length)
    expect(readdirSync(both.dir).filter((f) => f.startsWith('album'))).toEqual(['album.zip'])
  })

  it('exits as `peer get` does when nothing matches, with nothing on stdout', async () => {
    const viewer = await network.peer('lonely')
    const result = await cat(viewer, ['no-such-file.mkv'])
    expect(result.code).toBe(3)
    expect(result.stdout.length).toBe(0)
    expect(result.stderr).toMatch(/^peer: nothing on the network matches "no-such-file.mkv"\n$/)
  })

  for (const keep of [true, false]) {
    it(`a reader that stops halfway (| head -c 1M) ${keep ? 'leaves the download to finish' : 'with --no-keep stops it, resumable'}`, async () => {
      // Without --no-keep it runs to the end; with it, it must stop well before.
      const content = randomBytes((keep ? 16 : 64) * MiB)
      await source(`seed-${keep}`, `song-${keep}.flac`, content, '4M')
      const viewer = await network.peer(`reader-${keep}`)
      const args = [
        peerBin,
        'cat',
        sha(content),
        '--port',
        String(viewer.port),
        ...(keep ? [] : ['--no-keep']),
      ]
      const piped = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const shell = spawn(
          'bash',
          ['-o', 'pipefail', '-c', `"$0" "$@" | head -c ${MiB} | wc -c`, nodeBin, ...args],
          {
            env: { ...process.env, PEERDIR_STATE_DIR: network.stateRoot },
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        )
        let out = ''
        shell.stdout.on('data', (part) => {
          out += part
        })
        shell.on('exit', (code) => resolve({ code, out }))
      })
      expect(piped.out.trim()).toBe(String(MiB))
      expect(piped.code).toBe(0) // the reader stopping is not a failure
      const status = async () =>
        JSON.parse((await viewer.cli(['status', '--json'])).stdout) as { activeDownloads: number }
      if (keep) {
        // The file is moved into place before its record is removed: wait for both.
        await until(
          async () => existsSync(join(viewer.dir, `song-${keep}.flac`)) && partFiles(viewer.dir).length === 0,
          'the kept download to finish',
        )
        expect(sha(readFileSync(join(viewer.dir, `song-${keep}.flac`)))).toBe(sha(content))
        return
      }
      await until(async () => (await status()).activeDownloads === 0, 'the download to stop')
      expect(existsSync(join(viewer.dir, `song-${keep}.flac`))).toBe(false)
      expect(partFiles(viewer.dir)).toHaveLength(2)
      const verified = recordedChunks(viewer.dir)
      expect(verified).toContain(0)
      expect(verified.length).toBeLessThan(64)
      const got = await viewer.cli(['get', sha(content), '--json'])
      expect(got.code, got.stderr).toBe(0)
      expect(JSON.parse(got.stdout).resumedBytes).toBeGreaterThan(0)
    })
  }
})

describe('the local HTTP gateway', () => {
  it('answers a Range near the end before the download completes, then every kind of range of the file', async () => {
    const content = randomBytes(64 * MiB)
    const size = content.length
    await source('slow-seed', 'lecture.webm', content, '4M')
    const player = await network.peer('player')
    const path = `/content/${sha(content)}`
    const tail = await request(player.port, path, { headers: { range: 'bytes=-1000' } })
    const completeAtTail = existsSync(join(player.dir, 'lecture.webm'))
    const verifiedAtTail = recordedChunks(player.dir).length
    expect(tail.status).toBe(206)
    expect(tail.headers['content-range']).toBe(`bytes ${size - 1000}-${size - 1}/${size}`)
    expect(tail.body.equals(content.subarray(size - 1000))).toBe(true)
    // Answered early: the last chunk was fetched first, not after the rest of the file.
    expect(completeAtTail).toBe(false)
    expect(verifiedAtTail).toBeLessThan(32)
    const middle = await request(player.port, path, { headers: { range: 'bytes=30000000-30999999' } })
    expect(middle.status).toBe(206)
    expect(middle.body.equals(content.subarray(30_000_000, 31_000_000))).toBe(true)

    // The gateway keeps what it fetched: once the file is local, it is served from the file.
    await until(async () => existsSync(join(player.dir, 'lecture.webm')), 'the download to finish', 60_000)
    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 100],
      ['bytes=1000000-', 1_000_000, size],
      [`bytes=${size - 1}-${size - 1}`, size - 1, size],
      ['bytes=-1', size - 1, size],
      [`bytes=${size - 10}-${size + 5000}`, size - 10, size],
    ]
    for (const [range, start, end] of cases) {
      const answer = await request(player.port, path, { headers: { range } })
      expect(answer.status, range).toBe(206)
      expect(answer.headers['content-length'], range).toBe(String(end - start))
      expect(answer.body.equals(content.subarray(start, end)), range).toBe(true)
    }
    const whole = await request(player.port, path)
    expect(whole.status).toBe(200)
    expect(whole.headers['content-type']).toBe('video/webm')
    expect(whole.headers['accept-ranges']).toBe('bytes')
    expect(sha(whole.body)).toBe(sha(content))
    const head = await request(player.port, path, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(size))
    expect(head.body.length).toBe(0)
    const beyond = await request(player.port, path, { headers: { range: `bytes=${size}-` } })
    expect(beyond.status).toBe(416)
    expect(beyond.headers['content-range']).toBe(`bytes */${size}`)
  })

  it('refuses a foreign Host (DNS rebinding) and answers only loopback names with its port', async () => {
    const holder = await network.peer('holder')
    const content = randomBytes(1000)
    writeFileSync(join(holder.dir, 'note.txt'), content)
    await holder.waitFor(/published changes: \+1/)
    const path = `/content/${sha(content)}`
    for (const host of [
      'evil.example',
      `evil.example:${holder.port}`,
      '127.0.0.1',
      `localhost:${holder.port + 1}`,
    ]) {
      const refused = await request(holder.port, path, { headers: { host } })
      expect(refused.status, host).toBe(403)
      expect(refused.body.includes(content.subarray(0, 20)), host).toBe(false)
    }
    for (const host of [`localhost:${holder.port}`, `127.0.0.1:${holder.port}`, `[::1]:${holder.port}`]) {
      const served = await request(holder.port, path, { headers: { host } })
      expect(served.status, host).toBe(200)
      expect(served.body.equals(content)).toBe(true)
    }
    // A page of another site may embed the URL: browsers mark such requests, players do not.
    const crossSite: Record<string, string>[] = [
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'http://evil.example' },
    ]
    for (const headers of crossSite) {
      const refused = await request(holder.port, path, { headers })
      expect(refused.status, JSON.stringify(headers)).toBe(403)
    }
    const typed = await request(holder.port, path, { headers: { 'sec-fetch-site': 'none' } })
    expect(typed.status).toBe(200)
    // Over HTTP/2 too (Host is then :authority).
    const session = http2.connect(`http://127.0.0.1:${holder.port}`)
    try {
      const over2 = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        const stream = session.request({ ':path': path, range: 'bytes=10-19' })
        const parts: Buffer[] = []
        let status = 0
        stream.on('response', (headers) => {
          status = Number(headers[':status'])
        })
        stream.on('data', (part: Buffer) => parts.push(part))
        stream.on('end', () => resolve({ status, body: Buffer.concat(parts) }))
        stream.on('error', reject)
      })
      expect(over2.status).toBe(206)
      expect(over2.body.equals(content.subarray(10, 20))).toBe(true)
      const foreign = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':path': path, ':authority': `evil.example:${holder.port}` })
        stream.on('response', (headers) => resolve(Number(headers[':status'])))
        stream.on('error', reject)
        stream.resume()
      })
      expect(foreign).toBe(403)
    } finally {
      session.close()
    }
    const unknown = await request(holder.port, `/content/${'0'.repeat(64)}`)
    expect(unknown.status).toBe(404)
    const post = await request(holder.port, path, { method: 'POST' })
    expect(post.status).toBe(405)
  })

  it('refuses a caller from another machine even when it names a loopback host', async (context) => {
    if (mustSkip('NETNS', netnsUnavailable())) return context.skip()
    const holder = await network.peer('exposed', { args: ['--host', '0.0.0.0'] })
    const content = randomBytes(1000)
    writeFileSync(join(holder.dir, 'secret.txt'), content)
    await holder.waitFor(/published changes: \+1/)
    const outside = otherMachine()
    try {
      const script = `require('node:http').get({ host: '${outside.hostAddress}', port: ${holder.port}, path: '/content/${sha(content)}', headers: { host: '127.0.0.1:${holder.port}' } }, (res) => { let body = ''; res.on('data', (d) => { body += d }); res.on('end', () => console.log(res.statusCode, body.trim())) })`
      const answer = execFileSync('ip', ['netns', 'exec', outside.name, nodeBin, '-e', script], {
        encoding: 'utf8',
      })
      expect(answer.trim()).toBe('403 the gateway answers only this machine')
      // The same port still serves that machine its RPCs: only the gateway is local.
      const rpc = execFileSync(
        'ip',
        [
          'netns',
          'exec',
          outside.name,
          nodeBin,
          '-e',
          `fetch('http://${outside.hostAddress}:${holder.port}/peerdir.v1.PeerService/GetInfo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then((r) => console.log(r.status))`,
        ],
        { encoding: 'utf8' },
      )
      // Answered by the RPC server (no session token: unauthenticated), not refused by the gateway.
      expect(rpc.trim()).toBe('401')
    } finally {
      outside.remove()
    }
  })
})
