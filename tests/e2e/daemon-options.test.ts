import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { controlSocketPath, stateDirFor } from '../../peer/src/daemon/state-dir.ts'
import { nodeBin, postJson, repoRoot } from '../support/directory-process.ts'
import { asNobody, useOtherUser } from '../support/other-user.ts'
import { peerBin, runCli, startPeer } from '../support/peer-process.ts'
import { freePort } from '../support/ports.ts'
import { useTestNetwork } from '../support/test-network.ts'

/** The addresses the process `pid` listens on at `port` (IPv4), from /proc. */
function listeningAddresses(pid: number, port: number): string[] {
  const sockets = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]
      if (inode) sockets.add(inode)
    } catch {
      // closed meanwhile
    }
  }
  const addresses: string[] = []
  for (const line of readFileSync('/proc/net/tcp', 'utf8').trim().split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/)
    const [address = '', portHex = ''] = (fields[1] ?? '').split(':')
    // State 0A is LISTEN; the address is four bytes, little-endian.
    if (fields[3] !== '0A' || Number.parseInt(portHex, 16) !== port || !sockets.has(fields[9] ?? '')) continue
    addresses.push(
      (address.match(/../g) ?? [])
        .reverse()
        .map((byte) => Number.parseInt(byte, 16))
        .join('.'),
    )
  }
  return addresses
}

/** `peer start` options the README promises, each tried on a real daemon. */
const network = useTestNetwork()
const MiB = 1024 * 1024
const login = (username: string, password: string) =>
  postJson(`${network.directoryUrl}/v1/login`, { username, password, url: 'http://127.0.0.1:9' })

/** A daemon sharing `content` as `name`. */
async function sharing(name: string, file: string, content: Buffer, args: string[] = []) {
  const holder = await network.peer(name, { args })
  writeFileSync(join(holder.dir, file), content)
  await holder.waitFor(/published changes: \+1/)
  return holder
}

describe('peer start options', () => {
  it('--password-file: the file without its final newline is the password; an unreadable file is one line and exit 2', async () => {
    const secrets = mkdtempSync(join(tmpdir(), 'peerdir-secrets-'))
    writeFileSync(join(secrets, 'password'), 'from the file 7\n')
    const started = await network.peer('filed', {
      args: ['--password-file', join(secrets, 'password')],
      env: { PEER_PASSWORD: '' },
    })
    expect(started.output()).toMatch(/logged in/)
    expect((await login('filed', 'from the file 7\n')).status).toBe(401)
    expect((await login('filed', 'from the file 7')).status).toBe(200)

    const missing = spawnSync(
      nodeBin,
      [peerBin, 'start', '--name', 'nofile', '--password-file', join(secrets, 'absent'), '--port', '1'],
      { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, PEER_PASSWORD: '' } },
    )
    expect(missing.status).toBe(2)
    expect(missing.stderr).toMatch(/^peer: cannot read the password file .*absent\n$/)
  })

  it('--host and --public-url: listens only there, publishes that URL, serves from it, and its CLI still works', async () => {
    const port = await freePort()
    const publicUrl = `https://127.0.0.2:${port}`
    const content = randomBytes(2 * MiB + 3)
    const host = await network.peer('elsewhere', {
      port,
      args: ['--host', '127.0.0.2', '--public-url', publicUrl],
    })
    writeFileSync(join(host.dir, 'on-two.bin'), content)
    await host.waitFor(/published changes: \+1/)
    const { peers } = (await (await fetch(`${network.directoryUrl}/v1/peers`)).json()) as {
      peers: { username: string; url: string }[]
    }
    expect(peers.find((p) => p.username === 'elsewhere')?.url).toBe(publicUrl)
    // It listens on 127.0.0.2 alone. (Asked of the kernel: a connection to 127.0.0.1 at that port can
    // meet another test's listener given the same port, or even connect to itself.)
    expect(listeningAddresses(host.child.pid ?? 0, port)).toEqual(['127.0.0.2'])
    const status = await host.cli(['status', '--json'])
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ publicUrl, files: 1 })

    const fetcher = await network.peer('reaches-two')
    const sha = createHash('sha256').update(content).digest('hex')
    const got = await fetcher.cli(['get', sha, '--json'])
    expect(got.code, got.stderr).toBe(0)
    expect(JSON.parse(got.stdout).bytesPerSource).toEqual({ elsewhere: content.length })
  })

  it.each([
    ['::1', '[::1]'],
    ['::', '[::1]'],
  ])(
    '--host %s: publishes an IPv6 URL in brackets, serves from it, and its CLI works',
    async (listen, urlHost) => {
      const content = randomBytes(MiB + 5)
      const host = await network.peer(`v6-${listen.length}`, { args: ['--host', listen] })
      writeFileSync(join(host.dir, 'six.bin'), content)
      await host.waitFor(/published changes: \+1/)
      const status = JSON.parse((await host.cli(['status', '--json'])).stdout)
      expect(status.publicUrl).toBe(`https://${urlHost}:${host.port}`)
      const fetcher = await network.peer(`v6-fetcher-${listen.length}`)
      const got = await fetcher.cli(['get', createHash('sha256').update(content).digest('hex'), '--json'])
      expect(got.code, got.stderr).toBe(0)
      expect(JSON.parse(got.stdout).bytesPerSource).toEqual({ [host.name]: content.length })
    },
  )

  it('--max-upload-rate holds what it serves to the rate', async () => {
    const rate = 4 * MiB
    const content = randomBytes(12 * MiB)
    await sharing('capped', 'capped.bin', content, ['--max-upload-rate', '4M'])
    const fetcher = await network.peer('behind-the-cap')
    const started = performance.now()
    const got = await fetcher.cli(['get', createHash('sha256').update(content).digest('hex'), '--json'])
    const seconds = (performance.now() - started) / 1000
    expect(got.code, got.stderr).toBe(0)
    // The bucket lets a quarter second's bytes through at once and a piece (at most a chunk) on credit;
    // the rest cannot leave faster than the rate, however fast the machine.
    const floor = (content.length - rate / 4 - MiB) / rate
    console.log(`--max-upload-rate 4M: 12 MiB in ${seconds.toFixed(2)} s, ${(12 / seconds).toFixed(2)} MiB/s`)
    expect(seconds).toBeGreaterThanOrEqual(floor)
    expect(readFileSync(join(fetcher.dir, 'capped.bin')).equals(content)).toBe(true)
  })
})

/** Another local user, `nobody`, running the checkout's build from a copy it can reach. */
const otherUser = useOtherUser()

describe('another user on the same machine', () => {
  it.skipIf(!otherUser)('can neither read the control token nor reach the control socket', async () => {
    if (!otherUser) return
    // A state root anyone may enter, as a home folder often is: only the daemon's own 0700 folder guards it.
    const stateRoot = otherUser.folder('peerdir-shared-root-')
    const owner = await startPeer({ name: 'owner', directoryUrl: network.directoryUrl, stateRoot })
    network.track(owner)
    const other = await runCli(
      ['status', '--port', String(owner.port)],
      { PEERDIR_STATE_DIR: stateRoot },
      { command: [...asNobody, ...otherUser.peer.command], cwd: otherUser.root },
    )
    expect(other.code, other.stderr).toBe(1)
    expect(other.stderr).toMatch(/^peer: no peer daemon was started on port \d+ by this user/)
    // Nor can it talk to the socket without the token file: the folder refuses to be entered.
    const socket = controlSocketPath(stateDirFor(owner.port, stateRoot))
    const [setprivCommand, ...setprivArgs] = asNobody
    const probe = spawnSync(
      setprivCommand as string,
      [
        ...setprivArgs,
        otherUser.node,
        '-e',
        `require('net').connect(${JSON.stringify(socket)})` +
          `.on('error', (e) => console.log(e.code)).on('connect', () => { console.log('connected'); process.exit() })`,
      ],
      { cwd: otherUser.root, encoding: 'utf8' },
    )
    expect(probe.stdout.trim(), probe.stderr).toBe('EACCES')
    // The owner still can.
    expect((await owner.cli(['status'])).code).toBe(0)
  })
})
