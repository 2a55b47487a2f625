import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromiumPath, launchChromium } from '../support/browser.ts'
import { nodeBin } from '../support/directory-process.ts'
import { netnsUnavailable, otherMachine } from '../support/network-namespace.ts'
import { partFiles } from '../support/part-files.ts'
import { type PeerProcess, placeFile } from '../support/peer-process.ts'
import { listen } from '../support/ports.ts'
import { mustSkip } from '../support/requirements.ts'
import { useTestNetwork } from '../support/test-network.ts'

const noBrowser = mustSkip(
  'BROWSER',
  chromiumPath ? undefined : 'the web app tests need Chromium (apt-get install chromium)',
)

/** Where the screenshots of the main views go (test-results/ is not committed). */
const SHOTS = join(import.meta.dirname, '../../test-results/web-app')
const DESKTOP = { width: 1280, height: 900 }
const PHONE = { width: 390, height: 844 }

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

/** A 440 Hz tone as a 16-bit mono WAV: `seconds` of it at `rate` samples a second. */
function toneWav(seconds: number, rate = 44_100): Buffer {
  const samples = seconds * rate
  const wav = Buffer.alloc(44 + samples * 2)
  wav.write('RIFF', 0)
  wav.writeUInt32LE(36 + samples * 2, 4)
  wav.write('WAVEfmt ', 8)
  wav.writeUInt32LE(16, 16)
  wav.writeUInt16LE(1, 20)
  wav.writeUInt16LE(1, 22)
  wav.writeUInt32LE(rate, 24)
  wav.writeUInt32LE(rate * 2, 28)
  wav.writeUInt16LE(2, 32)
  wav.writeUInt16LE(16, 34)
  wav.write('data', 36)
  wav.writeUInt32LE(samples * 2, 40)
  for (let i = 0; i < samples; i++) {
    wav.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2)
  }
  return wav
}

/** Deterministic bytes that are no run of one value (so a wrong range shows). */
const bytesOf = (size: number, seed: number) => {
  const out = Buffer.alloc(size)
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed * 7 + (i >> 10)) & 0xff
  return out
}

async function appUrl(peer: PeerProcess): Promise<string> {
  const printed = await peer.cli(['ui', '--print'])
  expect(printed.code, printed.stderr).toBe(0)
  return printed.stdout.trim()
}

const status = async (peer: PeerProcess) => JSON.parse((await peer.cli(['status', '--json'])).stdout)
const wishes = async (peer: PeerProcess) => JSON.parse((await peer.cli(['wish', 'list', '--json'])).stdout)

/** Plain HTTP to the daemon's port, with the headers given (a browser would not let a page set Host). */
function request(port: number, path: string, headers: Record<string, string> = {}, body?: string) {
  return new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>(
    (resolve, reject) => {
      const method = body === undefined ? 'GET' : 'POST'
      // A connection per request: a kept-alive one may be closed as idle just as a request goes out.
      const req = http.request({ host: '127.0.0.1', port, path, headers, method, agent: false }, (res) => {
        let text = ''
        res.on('data', (part) => {
          text += part
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }))
      })
      req.on('error', reject)
      req.end(body)
    },
  )
}

const network = useTestNetwork()

describe.skipIf(noBrowser)('the peer’s web app in headless Chromium', () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await launchChromium()
    mkdirSync(SHOTS, { recursive: true })
  })
  afterAll(async () => {
    await browser?.close()
  })

  /** A browser profile of its own that has opened the app through a one-time URL. */
  async function openApp(
    peer: PeerProcess,
    viewport = DESKTOP,
  ): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport })
    const page = await context.newPage()
    const opened = await page.goto(await appUrl(peer))
    expect(opened?.status()).toBe(200)
    expect(new URL(page.url()).pathname).toBe('/app/')
    return { context, page }
  }

  it('searches as you type, downloads with a moving progressbar, plays while downloading, browses and fetches a folder, and fetches a wish by itself', async () => {
    const seed = await network.peer('app-seed', { args: ['--max-upload-rate', '1M'] })
    const notes = bytesOf(4 * 1024 * 1024 + 123, 1)
    mkdirSync(join(seed.dir, 'album'), { recursive: true })
    const tracks = { 'one.txt': bytesOf(3000, 2), 'two.txt': bytesOf(5000, 3) }
    for (const [name, bytes] of Object.entries(tracks)) writeFileSync(join(seed.dir, 'album', name), bytes)
    placeFile(seed.dir, 'field-notes.bin', notes)
    await seed.waitFor(/published changes: \+3/)
    const radio = await network.peer('app-radio', { args: ['--max-upload-rate', '4M'] })
    // 12 minutes, 64 MB at 4 MB/s: many chunks, so the first ones arrive long before the last.
    const wav = toneWav(720)
    placeFile(radio.dir, 'radio-tone.wav', wav)
    await radio.waitFor(/published changes: \+1/)
    const user = await network.peer('app-user', { env: { PEERDIR_WISH_INTERVAL_MS: '300' } })

    const { context, page } = await openApp(user)
    try {
      await page.getByRole('status').filter({ hasText: 'app-user is up' }).waitFor()
      await page.screenshot({ path: join(SHOTS, 'desktop-start.png'), fullPage: true })

      // Search as you type, then Download: the progressbar named by the file moves, the file lands verified.
      await page.getByLabel('Search the network').pressSequentially('field-notes')
      const result = page.getByRole('listitem').filter({ hasText: 'field-notes.bin' })
      await result.getByRole('button', { name: 'Download' }).click()
      const downloads = page.getByRole('region', { name: 'Downloads' })
      const bar = downloads.getByRole('progressbar', { name: 'field-notes.bin' })
      await page.waitForFunction(() => {
        const p = document.querySelector<HTMLProgressElement>('progress[aria-label="field-notes.bin"]')
        return p !== null && p.value > 0 && p.value < p.max
      })
      expect(await bar.count()).toBe(1)
      await page.screenshot({ path: join(SHOTS, 'desktop-downloading.png'), fullPage: true })
      await downloads
        .getByRole('listitem')
        .filter({ hasText: 'field-notes.bin' })
        .getByRole('button', { name: 'Open' })
        .waitFor({ timeout: 30_000 })
      expect(sha(readFileSync(join(user.dir, 'field-notes.bin')))).toBe(sha(notes))

      // Play a WAV from a rate-capped source: the audio plays before its download ends.
      const box = page.getByLabel('Search the network')
      await box.fill('')
      await box.pressSequentially('radio-tone')
      await page
        .getByRole('listitem')
        .filter({ hasText: 'radio-tone.wav' })
        .getByRole('button', { name: 'Play' })
        .click()
      await page.waitForFunction(
        () => (document.querySelector<HTMLAudioElement>('#player audio')?.currentTime ?? 0) > 0.5,
        undefined,
        { timeout: 30_000 },
      )
      // Still downloading (the daemon says so, not the page), and not saved under its name yet.
      expect((await status(user)).activeDownloads).toBeGreaterThanOrEqual(1)
      expect(readdirSync(user.dir)).not.toContain('radio-tone.wav')
      await page.screenshot({ path: join(SHOTS, 'desktop-playing.png'), fullPage: true })
      // The row keeps its nodes as the download moves on: made anew at each event, a Cancel pressed just
      // as one came was lost (the button pressed was gone at the release).
      const playing = downloads.getByRole('listitem').filter({ hasText: 'radio-tone.wav' })
      const pressed = await playing.getByRole('button', { name: 'Cancel' }).elementHandle()
      const doneAt = () => playing.locator('progress').evaluate((bar) => (bar as HTMLProgressElement).value)
      const before = await doneAt()
      await expect.poll(doneAt, { timeout: 30_000 }).toBeGreaterThan(before)
      expect(await pressed?.evaluate((button) => button.isConnected)).toBe(true)
      // Cancel keeps the verified part; the row offers Retry.
      await playing.getByRole('button', { name: 'Cancel' }).click()
      await playing.getByRole('button', { name: 'Retry' }).waitFor()
      expect((await status(user)).activeDownloads).toBe(0)
      expect(partFiles(user.dir).length).toBeGreaterThan(0)

      // Browse the seed from a result's source and fetch its folder.
      await box.fill('')
      await box.pressSequentially('field-notes')
      await page
        .getByRole('listitem')
        .filter({ hasText: 'field-notes.bin' })
        .getByRole('button', { name: 'app-seed', exact: true })
        .click()
      await page.getByRole('button', { name: 'album/' }).click()
      await page.getByRole('button', { name: 'Download folder' }).click()
      for (const name of Object.keys(tracks)) {
        await downloads
          .getByRole('listitem')
          .filter({ hasText: name })
          .getByRole('button', { name: 'Open' })
          .waitFor({ timeout: 30_000 })
      }
      for (const [name, bytes] of Object.entries(tracks)) {
        expect(sha(readFileSync(join(user.dir, 'album', name)))).toBe(sha(bytes))
      }

      // A wish that fetches its match by itself, once the seed shares one; it shows up in Downloads.
      await page.getByLabel('Wish for').fill('nightjar')
      await page.getByRole('button', { name: 'Add wish' }).click()
      await page.getByRole('listitem').filter({ hasText: 'fetches matches' }).waitFor()
      expect((await wishes(user)).wishes).toHaveLength(1)
      const song = bytesOf(2000, 4)
      placeFile(seed.dir, 'nightjar-song.txt', song)
      await downloads
        .getByRole('listitem')
        .filter({ hasText: 'nightjar-song.txt' })
        .getByRole('button', { name: 'Open' })
        .waitFor({ timeout: 30_000 })
      expect(sha(readFileSync(join(user.dir, 'nightjar-song.txt')))).toBe(sha(song))
      await page.screenshot({ path: join(SHOTS, 'desktop-all.png'), fullPage: true })

      const phone = await context.newPage()
      await phone.setViewportSize(PHONE)
      await phone.goto(page.url())
      await phone.getByRole('status').filter({ hasText: 'app-user is up' }).waitFor()
      await phone.screenshot({ path: join(SHOTS, 'phone-start.png'), fullPage: false })
      await phone.screenshot({ path: join(SHOTS, 'phone-full.png'), fullPage: true })
    } finally {
      await context.close()
    }
  })

  it('lets no other page, host or second visit read or change anything', async () => {
    const seed = await network.peer('guard-seed')
    const bait = bytesOf(5000, 9)
    placeFile(seed.dir, 'bait.bin', bait)
    await seed.waitFor(/published changes: \+1/)
    const user = await network.peer('guard-user')
    const appPath = (path: string) => `http://127.0.0.1:${user.port}${path}`

    // Without a display, `peer ui` prints the URL instead of opening a browser.
    const headless = await user.cli(['ui'], { env: { DISPLAY: '', WAYLAND_DISPLAY: '' } })
    expect(headless.code, headless.stderr).toBe(0)
    expect(headless.stdout.trim()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/app\/open\?ticket=[\w-]{43}$/)

    // The one-time URL works once.
    const once = await appUrl(user)
    const { context, page } = await openApp(user)
    const first = await context.newPage()
    expect((await first.goto(once))?.status()).toBe(200)
    const again = await first.goto(once)
    expect(again?.status()).toBe(403)
    expect(await first.textContent('body')).toContain('peer ui')

    // Without the cookie: one line, and no data.
    const stranger = await browser.newContext()
    const bare = await stranger.newPage()
    const shown = await bare.goto(appPath('/app/'))
    expect(shown?.status()).toBe(401)
    expect((await bare.textContent('body'))?.trim()).toBe(
      'Run `peer ui` in a terminal on this machine to open the app.',
    )
    expect((await request(user.port, '/app/api/wishes')).status).toBe(401)
    await stranger.close()

    // A change with the cookie needs the app's own Origin and a JSON body (what no form can send).
    const [session] = await context.cookies()
    const withCookie = { cookie: `${session?.name}=${session?.value}`, 'content-type': 'application/json' }
    const wish = '{"query":"bait","get":true}'
    const own = `http://127.0.0.1:${user.port}`
    expect((await request(user.port, '/app/api/wish-add', withCookie, wish)).status).toBe(403)
    const elsewhere = { ...withCookie, origin: 'http://127.0.0.1:1' }
    expect((await request(user.port, '/app/api/wish-add', elsewhere, wish)).status).toBe(403)
    const asText = { ...withCookie, origin: own, 'content-type': 'text/plain' }
    expect((await request(user.port, '/app/api/wish-add', asText, wish)).status).toBe(415)
    expect((await wishes(user)).wishes).toEqual([])

    // A wrong Host (DNS rebinding): refused, and the ticket it carried is not spent.
    const ticket = await appUrl(user)
    const rebound = await request(user.port, new URL(ticket).pathname + new URL(ticket).search, {
      host: `rebind.example:${user.port}`,
    })
    expect(rebound.status).toBe(403)
    expect((await first.goto(ticket))?.status()).toBe(200)

    // A page of another origin on this machine (same site: the SameSite cookie goes with its requests)
    // posts forms, fetches and embeds the app while the browser holds the app's cookie.
    const evil = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(`<!doctype html>
<iframe name="sink"></iframe>
<iframe id="embed" src="${appPath('/app/')}"></iframe>
<form id="f" method="post" action="${appPath('/app/api/download')}" enctype="text/plain" target="sink">
<input name='{"sha256":"${sha(bait)}","x":"' value='"}'></form>
<script>
const tries = []
const attempt = (name, p) => tries.push(p.then(async (r) => name + ':' + r.type + ':' + (await r.text()).length, () => name + ':blocked'))
attempt('read', fetch('${appPath('/app/api/shared')}', { credentials: 'include' }))
attempt('status', fetch('${appPath('/app/api/status')}', { credentials: 'include', mode: 'no-cors' }))
attempt('wish', fetch('${appPath('/app/api/wish-add')}', { method: 'POST', credentials: 'include', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{"query":"bait","get":true}' }))
attempt('json', fetch('${appPath('/app/api/download')}', { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: '{"sha256":"${sha(bait)}"}' }))
const sink = document.getElementsByName('sink')[0]
tries.push(new Promise((resolve) => { sink.onload = () => resolve('form:sent') }))
document.getElementById('f').submit()
Promise.all(tries).then((all) => { document.title = JSON.stringify(all) })
</script>`)
    })
    const evilPort = await listen(evil)
    try {
      await page.goto(`http://127.0.0.1:${evilPort}/`)
      await page.waitForFunction(() => document.title.startsWith('['))
      const outcomes = JSON.parse(await page.title()) as string[]
      // Nothing read: every fetch failed or came back opaque (no body to read).
      expect(
        outcomes.filter((o) => !o.endsWith(':blocked') && !o.includes(':opaque:0') && o !== 'form:sent'),
      ).toEqual([])
      // The embedded app shows nothing: its frame was refused.
      const embedded = page.frames().find((f) => f.url().includes('/app/'))
      expect(await embedded?.$('#search').catch(() => null)).toBeFalsy()
      // Nothing started or changed, as the daemon tells it.
      expect((await status(user)).activeDownloads).toBe(0)
      expect((await wishes(user)).wishes).toEqual([])
      expect(readdirSync(user.dir)).not.toContain('bait.bin')
      // The app's own page still can.
      await page.goto(appPath('/app/'))
      await page.getByLabel('Search the network').pressSequentially('bait')
      await page
        .getByRole('listitem')
        .filter({ hasText: 'bait.bin' })
        .getByRole('button', { name: 'Download' })
        .click()
      await page
        .getByRole('region', { name: 'Downloads' })
        .getByRole('listitem')
        .filter({ hasText: 'bait.bin' })
        .getByRole('button', { name: 'Open' })
        .waitFor({ timeout: 30_000 })
      expect(readdirSync(user.dir)).toContain('bait.bin')
      // Asked again for what it shares now, the app fetches nothing: it says where the file is.
      const again = await page.evaluate(async (sha256) => {
        const body = JSON.stringify({ sha256 })
        const headers = { 'content-type': 'application/json' }
        return (await fetch('/app/api/download', { method: 'POST', headers, body })).json()
      }, sha(bait))
      expect(again).toEqual({ name: 'bait.bin', path: join(user.dir, 'bait.bin') })
      expect(readdirSync(user.dir).filter((name) => name.includes('bait'))).toEqual(['bait.bin'])
    } finally {
      evil.close()
      await context.close()
    }
  })
})

describe('the web app from another machine', () => {
  it('refuses a caller in another network namespace, and leaves its ticket unspent', async (context) => {
    if (mustSkip('NETNS', netnsUnavailable())) return context.skip()
    // In plaintext, so that the plain request reaches the app's own check (a TLS port closes a plain
    // connection from another machine before any HTTP: tests/peer/tls-port.test.ts).
    const user = await network.peer('app-exposed', { args: ['--host', '0.0.0.0', '--plaintext'] })
    const ticket = new URL(await appUrl(user))
    const path = `${ticket.pathname}${ticket.search}`
    const outside = otherMachine()
    try {
      // It names the daemon by a loopback host, as a page reaching it by DNS rebinding could not.
      const script = `require('node:http').get({ host: '${outside.hostAddress}', port: ${user.port}, path: '${path}', headers: { host: '127.0.0.1:${user.port}' } }, (res) => { let body = ''; res.on('data', (d) => { body += d }); res.on('end', () => console.log(res.statusCode, body.trim())) })`
      const answer = execFileSync('ip', ['netns', 'exec', outside.name, nodeBin, '-e', script], {
        encoding: 'utf8',
      })
      expect(answer.trim()).toBe('403 the gateway answers only this machine')
      const here = await request(user.port, path, { host: `127.0.0.1:${user.port}` })
      expect(here.status).toBe(303)
      expect(here.headers['set-cookie']?.[0]).toMatch(/; HttpOnly; SameSite=Strict; Path=\/$/)
    } finally {
      outside.remove()
    }
  })
})
