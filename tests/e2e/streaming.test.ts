import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ControlClient } from '../../peer/src/cli/control-client.ts'
import { readControlInfo, stateDirFor } from '../../peer/src/daemon/state-dir.ts'
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
    // A connection per request, as curl makes: a kept-alive one may be closed by the daemon as idle just
    // as the next request goes out on a loaded machine (the request then meets "socket hang up").
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
      },
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
      const result = await cat(viewer, ['film.mp4'])
      expect(result.code, result.stderr).toBe(0)
      expect(result.stderr).toBe('')
      expect(sha(result.stdout)).toBe(sha(content))
      // The liar was asked (every chunk it has is false) and none of its bytes got through.
      expect(liar.downloadCalls()).toBeGreaterThan(0)
      // The first bytes came long before the end: the 4 MiB/s cap makes the transfer last 16 s at least,
      // and bytes flowed for more than half of that (the whole file at the end would pass in a second).
      // Counted from the first byte, not from the CLI's start, which a loaded machine makes slow.
      expect(result.exitedAt - result.firstBytesAt).toBeGreaterThan(8_000)
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

  it('holds back the last slice of a content whose whole-file hash is false, and exits 3', async () => {
    // Every chunk matches the liar's manifest; the whole file is not the content it claims to be.
    const content = randomBytes(3 * MiB + 5)
    const claimed = sha(randomBytes(32))
    const liar = await startLyingPeer({
      directoryUrl: network.directoryUrl,
      username: 'false-whole',
      content,
      name: 'forged.mkv',
      corruptChunks: [],
      claimedSha256: claimed,
    })
    try {
      const viewer = await network.peer('trusting-viewer')
      const result = await cat(viewer, [claimed])
      expect(result.code).toBe(3)
      expect(result.stderr).toMatch(
        new RegExp(`^peer: .*the assembled file hashes to ${sha(content)}, not ${claimed}; discarded\n$`),
      )
      // What was written is the file's own bytes, but never all of them: the end waited for the hash.
      expect(result.stdout.length).toBeLessThan(content.length)
      expect(result.stdout.equals(content.subarray(0, result.stdout.length))).toBe(true)
      expect(readdirSync(viewer.dir)).not.toContain('forged.mkv')
      // A player reading it through the gateway gets a 200 whose body is cut short before its end.
      const path = await capabilityPath(viewer, claimed)
      const played = await new Promise<{ status: number; length: number; complete: boolean }>(
        (resolve, reject) => {
          http
            .get({ host: '127.0.0.1', port: viewer.port, path }, (res) => {
              let length = 0
              res.on('data', (part: Buffer) => {
                length += part.length
              })
              res.on('error', () => {})
              res.on('close', () => resolve({ status: res.statusCode ?? 0, length, complete: res.complete }))
            })
            .on('error', reject)
        },
      )
      expect(played.status).toBe(200)
      expect(played.complete).toBe(false)
      expect(played.length).toBeLessThan(content.length)
    } finally {
      await liar.close()
    }
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

/** The path and query of the gateway URL `peer url` prints for a content, checked for its shape. */
async function capabilityPath(peer: PeerProcess, target: string): Promise<string> {
  const printed = await peer.cli(['url', target])
  expect(printed.code, printed.stderr).toBe(0)
  expect(printed.stdout).toMatch(
    new RegExp(`^http://127\\.0\\.0\\.1:${peer.port}/content/[0-9a-f]{64}\\?cap=[\\w-]{43}\n$`),
  )
  const url = new URL(printed.stdout.trim())
  return url.pathname + url.search
}

/** Another user of this machine is `nobody`, through setpriv (util-linux), which only root may do. */
const noOtherUser =
  process.getuid?.() !== 0
    ? 'the other-user gateway test needs root, to run curl as nobody'
    : spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'curl', '--version'])
          .status !== 0
      ? 'the other-user gateway test needs setpriv (util-linux) and curl, runnable by nobody'
      : undefined

/** `curl` as nobody: the status and body of a GET to the gateway. */
function curlAsNobody(port: number, path: string): { status: number; body: string } {
  const out = execFileSync(
    'setpriv',
    [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'curl',
      '-s',
      '-w',
      '\n%{http_code}',
      `http://127.0.0.1:${port}${path}`,
    ],
    { encoding: 'utf8', cwd: '/' },
  )
  const at = out.lastIndexOf('\n')
  return { status: Number(out.slice(at + 1)), body: out.slice(0, at) }
}

describe('the local HTTP gateway', () => {
  it('makes the daemon fetch only for its owner, with the capability `peer url` prints; serves anyone what it shares', async (context) => {
    const content = randomBytes(300 * 1024)
    await source('cap-seed', 'talk.webm', content, '100M')
    const owner = await network.peer('cap-owner')
    const path = `/content/${sha(content)}`
    const asNobody = !mustSkip('SETPRIV', noOtherUser)
    // No capability (a local user's curl; a link on another site opened as a navigation), or a forged one.
    const refusals: [string, Record<string, string>, number][] = [
      [path, {}, 404],
      [path, { 'sec-fetch-site': 'none' }, 404],
      [`${path}?cap=${'A'.repeat(43)}`, {}, 403],
      [`${path}?cap=`, {}, 403],
    ]
    for (const [refused, headers, status] of refusals) {
      const answer = await request(owner.port, refused, { headers })
      expect(answer.status, refused).toBe(status)
      expect(answer.body.toString(), refused).toMatch(/only the daemon’s owner .*`peer url [0-9a-f]{64}`/)
    }
    if (asNobody) {
      const nobody = curlAsNobody(owner.port, path)
      expect(nobody.status).toBe(404)
      expect(nobody.body).toMatch(/`peer url /)
    }
    // A capability is for one content: that of a file the owner shares does not open this one.
    writeFileSync(join(owner.dir, 'own.txt'), 'shared here')
    await owner.waitFor(/published changes: \+1/)
    const own = new URL(`http://127.0.0.1${await capabilityPath(owner, 'own.txt')}`)
    const borrowed = await request(owner.port, `${path}${own.search}`)
    expect(borrowed.status).toBe(403)
    expect(borrowed.body.toString()).toMatch(/^this URL’s capability is not the one for this content/)
    const status = async () =>
      JSON.parse((await owner.cli(['status', '--json'])).stdout) as { activeDownloads: number }
    expect((await status()).activeDownloads).toBe(0)
    expect(partFiles(owner.dir)).toEqual([])

    const missing = await owner.cli(['url', 'no-such-talk.webm'])
    expect(missing.code).toBe(3)
    expect(missing.stderr).toMatch(/^peer: nothing on the network matches "no-such-talk.webm"\n$/)
    const described = await owner.cli(['url', sha(content), '--json'])
    expect(JSON.parse(described.stdout)).toMatchObject({
      name: 'talk.webm',
      sha256: sha(content),
      size: content.length,
    })
    const fetching = await capabilityPath(owner, 'talk.webm')
    const fetched = await request(owner.port, fetching)
    expect(fetched.status).toBe(200)
    expect(sha(fetched.body)).toBe(sha(content))
    // Fetched bytes go out under the same policy as shared ones: media stays media.
    expect(fetched.headers['content-security-policy']).toBe("default-src 'none'; media-src 'self'")
    expect(fetched.headers['x-content-type-options']).toBe('nosniff')
    // Kept and shared: from now on anyone on this machine reads it, as any peer may.
    await until(async () => existsSync(join(owner.dir, 'talk.webm')), 'the fetched file to be kept')
    await until(async () => (await request(owner.port, path)).status === 200, 'the file to be indexed')
    if (asNobody) {
      const nobody = curlAsNobody(owner.port, `${path}`)
      expect(nobody.status).toBe(200)
    } else {
      context.annotate('the other-user part was skipped')
    }
    // `peer cat` reads through the control socket: no capability needed there.
    const viewer = await network.peer('cap-cat')
    const catted = await cat(viewer, [sha(content)])
    expect(catted.code, catted.stderr).toBe(0)
    expect(sha(catted.stdout)).toBe(sha(content))
  })

  it('answers a Range near the end before the download completes, then every kind of range of the file', async () => {
    const content = randomBytes(64 * MiB)
    const size = content.length
    await source('slow-seed', 'lecture.webm', content, '4M')
    const player = await network.peer('player')
    const path = `/content/${sha(content)}`
    // Not local yet: only the capability `peer url` prints makes the daemon fetch it.
    const fetching = await capabilityPath(player, sha(content))
    const tail = await request(player.port, fetching, { headers: { range: 'bytes=-1000' } })
    const completeAtTail = existsSync(join(player.dir, 'lecture.webm'))
    const verifiedAtTail = recordedChunks(player.dir).length
    expect(tail.status).toBe(206)
    expect(tail.headers.etag).toBe(`"${sha(content)}"`)
    expect(tail.headers['content-range']).toBe(`bytes ${size - 1000}-${size - 1}/${size}`)
    expect(tail.body.equals(content.subarray(size - 1000))).toBe(true)
    // Answered early: the last chunk was fetched first, not after the rest of the file.
    expect(completeAtTail).toBe(false)
    expect(verifiedAtTail).toBeLessThan(32)
    const middle = await request(player.port, fetching, { headers: { range: 'bytes=30000000-30999999' } })
    expect(middle.status).toBe(206)
    expect(middle.body.equals(content.subarray(30_000_000, 31_000_000))).toBe(true)

    // The gateway keeps what it fetched: once the file is local, it is served from the file (known to
    // the daemon's index a moment after the file takes its name: asked until it is).
    await until(async () => existsSync(join(player.dir, 'lecture.webm')), 'the download to finish', 60_000)
    await until(
      async () => (await request(player.port, path, { method: 'HEAD' })).status === 200,
      'the daemon to serve the finished file',
    )
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

  it('names each content by its sha256 as ETag, and answers a range only if If-Range names it', async () => {
    const holder = await network.peer('validator')
    const content = randomBytes(5000)
    writeFileSync(join(holder.dir, 'clip.mp3'), content)
    await holder.waitFor(/published changes: \+1/)
    const path = `/content/${sha(content)}`
    const etag = `"${sha(content)}"`
    const whole = await request(holder.port, path)
    expect(whole.status).toBe(200)
    expect(whole.headers.etag).toBe(etag)
    // Media is no sandboxed document (a browser's player must fetch it again); everything else is.
    expect(whole.headers['content-security-policy']).toBe("default-src 'none'; media-src 'self'")
    expect(whole.headers['x-content-type-options']).toBe('nosniff')
    const head = await request(holder.port, path, { method: 'HEAD' })
    expect(head.headers.etag).toBe(etag)
    const matching = await request(holder.port, path, {
      headers: { range: 'bytes=100-199', 'if-range': etag },
    })
    expect(matching.status).toBe(206)
    expect(matching.headers.etag).toBe(etag)
    expect(matching.body.equals(content.subarray(100, 200))).toBe(true)
    // Another validator (another tag, a weak one, a date): the part held is of another copy, so all of it.
    for (const ifRange of [`"${'0'.repeat(64)}"`, `W/${etag}`, 'Sun, 06 Dec 2026 08:00:00 GMT']) {
      const other = await request(holder.port, path, {
        headers: { range: 'bytes=100-199', 'if-range': ifRange },
      })
      expect(other.status, ifRange).toBe(200)
      expect(other.headers['content-range'], ifRange).toBeUndefined()
      expect(other.body.equals(content), ifRange).toBe(true)
    }
    // Even a range that could not be served: If-Range comes first.
    const beyond = await request(holder.port, path, { headers: { range: 'bytes=9000-', 'if-range': '"x"' } })
    expect(beyond.status).toBe(200)
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
      expect(served.headers['content-security-policy'], host).toBe('sandbox')
      expect(served.headers['x-content-type-options'], host).toBe('nosniff')
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
    // A page a peer published is no page of this origin: plain bytes, sandboxed, never sniffed.
    const page = Buffer.from('<script>alert(document.cookie)</script>')
    writeFileSync(join(holder.dir, 'page.html'), page)
    const pagePath = `/content/${sha(page)}`
    await until(async () => (await request(holder.port, pagePath)).status === 200, 'the page to be shared')
    const served = await request(holder.port, pagePath)
    expect(served.headers['content-type']).toBe('application/octet-stream')
    expect(served.headers['content-security-policy']).toBe('sandbox')
    expect(served.headers['x-content-type-options']).toBe('nosniff')
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

  it('with ?keep=0 serves a seek from the same transfer, then stops it, keeping nothing but the resumable part', async () => {
    const content = randomBytes(16 * MiB)
    // A source that counts the manifests it is asked for: each transfer asks once.
    const seed = await startLyingPeer({
      directoryUrl: network.directoryUrl,
      username: 'unkept-seed',
      content,
      name: 'preview.webm',
      corruptChunks: [],
      bytesPerSecond: 2 * MiB,
    })
    network.track({ stop: () => seed.close() })
    const viewer = await network.peer('previewer')
    const path = `${await capabilityPath(viewer, sha(content))}&keep=0`
    const start = await request(viewer.port, path, { headers: { range: 'bytes=0-99' } })
    expect(start.status).toBe(206)
    expect(start.body.equals(content.subarray(0, 100))).toBe(true)
    // Its only request has ended; a player's next Range (a seek) comes within the grace (3 s, and this
    // one comes at once), so it finds the same transfer running rather than starting another.
    const seek = await request(viewer.port, path, { headers: { range: 'bytes=-1000' } })
    expect(seek.status).toBe(206)
    expect(seek.body.equals(content.subarray(content.length - 1000))).toBe(true)
    // Nobody reads any more and nobody keeps it: it stops well before its 8 s at the source's pace.
    const info = readControlInfo(stateDirFor(viewer.port, network.stateRoot))
    if (!info) throw new Error('the viewer wrote no control info')
    const control = new ControlClient(info.socket, info.token)
    await until(
      async () => (await control.call('status', {})).activeDownloads === 0,
      'the unkept transfer to stop',
    )
    expect(seed.manifestCalls()).toBe(1)
    expect(existsSync(join(viewer.dir, 'preview.webm'))).toBe(false)
    expect(partFiles(viewer.dir)).toHaveLength(2)
    expect(recordedChunks(viewer.dir).length).toBeLessThan(16)
  })

  it('answers 503 for a shared file changed on disk since it was hashed, then serves what it holds now', async () => {
    const holder = await network.peer('stale-holder')
    const before = randomBytes(4000)
    const file = join(holder.dir, 'draft.txt')
    writeFileSync(file, before)
    await holder.waitFor(/published changes: \+1/)
    expect((await request(holder.port, `/content/${sha(before)}`)).status).toBe(200)
    // Stopped while the file changes and the request reaches its socket, so the daemon reads the
    // request before its watcher's rescan (400 ms after the change) can have indexed the new bytes.
    const after = randomBytes(4000)
    holder.child.kill('SIGSTOP')
    let reply: Promise<string>
    try {
      writeFileSync(file, after)
      const socket = net.connect(holder.port, '127.0.0.1')
      reply = new Promise((resolve, reject) => {
        let text = ''
        socket.on('data', (part) => {
          text += part
        })
        socket.on('end', () => resolve(text))
        socket.on('error', reject)
      })
      const get = `GET /content/${sha(before)} HTTP/1.1\r\nhost: 127.0.0.1:${holder.port}\r\nconnection: close\r\n\r\n`
      await new Promise<void>((resolve, reject) =>
        socket.write(get, (err) => (err ? reject(err) : resolve())),
      )
    } finally {
      holder.child.kill('SIGCONT')
    }
    const stale = await reply
    expect(stale).toMatch(/^HTTP\/1\.1 503 /)
    expect(stale).toMatch(
      /\r\n\r\nthe shared file changed since it was indexed; it is being indexed again\n$/,
    )
    await until(
      async () => (await request(holder.port, `/content/${sha(after)}`)).status === 200,
      'the changed file to be indexed again',
    )
    expect((await request(holder.port, `/content/${sha(before)}`)).status).toBe(404)
  })

  it('refuses a caller from another machine even when it names a loopback host', async (context) => {
    if (mustSkip('NETNS', netnsUnavailable())) return context.skip()
    const holder = await network.peer('exposed', { args: ['--host', '0.0.0.0'] })
    const content = randomBytes(1000)
    writeFileSync(join(holder.dir, 'secret.txt'), content)
    await holder.waitFor(/published changes: \+1/)
    const outside = otherMachine()
    try {
      // Over TLS, as the port serves the network (plain HTTP from another machine is closed unanswered).
      const script = `require('node:https').get({ host: '${outside.hostAddress}', port: ${holder.port}, path: '/content/${sha(content)}', rejectUnauthorized: false, headers: { host: '127.0.0.1:${holder.port}' } }, (res) => { let body = ''; res.on('data', (d) => { body += d }); res.on('end', () => console.log(res.statusCode, body.trim())) })`
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
          `require('node:https').request({ host: '${outside.hostAddress}', port: ${holder.port}, path: '/peerdir.v1.PeerService/GetInfo', method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => { res.resume(); console.log(res.statusCode) }).end('{}')`,
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
