import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromiumPath, launchChromium } from '../support/browser.ts'
import {
  apiLogin,
  apiLogout,
  apiPublish,
  type PageProblems,
  watchPage,
} from '../support/dashboard-network.ts'
import { fileEntry } from '../support/directory-app.ts'
import { type DirectoryProcess, repoRoot, startDirectoryProcess } from '../support/directory-process.ts'
import { mustSkip } from '../support/requirements.ts'

const noBrowser = mustSkip(
  'BROWSER',
  chromiumPath ? undefined : 'the dashboard browser tests need Chromium (apt-get install chromium)',
)

const HOSTILE = `<script>alert(1)<script> & "quotes" 'too' &amp;.mp3`
const HOSTILE_2 = '<img src=x onerror=alert(2)>.flac'
const CONCERT = fileEntry('Concert Live.flac', 'concert', 4096)
const FILLERS = Array.from({ length: 53 }, (_, i) => `peer-${String(i).padStart(2, '0')}`)
const outDir = join(repoRoot, 'test-results')

describe.skipIf(noBrowser)('the dashboard in headless Chromium', () => {
  let browser: Browser
  let context: BrowserContext
  let directory: DirectoryProcess
  let page: Page
  let problems: PageProblems
  let bobToken: string
  let aliceToken: string

  beforeAll(async () => {
    directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '600' } })
    const alice = await apiLogin(directory.url, 'alice', 50001)
    aliceToken = alice
    bobToken = await apiLogin(directory.url, 'bob', 50002)
    await apiPublish(directory.url, alice, [CONCERT, fileEntry(HOSTILE), fileEntry(HOSTILE_2)])
    await apiPublish(directory.url, bobToken, [CONCERT, fileEntry('notes.txt')])
    // 55 peers in all: more than one page of 50.
    await Promise.all(FILLERS.map((name, i) => apiLogin(directory.url, name, 51000 + i)))
    browser = await launchChromium()
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: directory.url })
    page = await context.newPage()
    problems = watchPage(page)
    await page.goto(`${directory.url}/`)
    mkdirSync(outDir, { recursive: true })
  }, 90_000)

  afterAll(async () => {
    await browser?.close()
    await directory?.stop('SIGKILL')
  })

  it('loads with no console errors and shows the right counts', async () => {
    expect(await page.textContent('#stat-peers')).toBe('55 / 55')
    expect(await page.textContent('#stat-files')).toBe('5')
    expect(await page.textContent('#stat-unique')).toBe('4')
    expect(await page.textContent('#stat-bytes')).toBe(`${((4096 + 1000 * 3) / 1024).toFixed(2)} KiB`)
    expect(await page.locator('#peer-rows tr').count()).toBe(50)
    expect(await page.textContent('#peer-page')).toBe('1–50 of 55')
    expect(await page.textContent('tr[data-peer="alice"] .seen')).toMatch(/^last seen \d+ s ago$/)
    expect(await page.getAttribute('a[href="/docs"]', 'href')).toBe('/docs')
    await expect.poll(() => page.locator('html.js').count()).toBe(1)
    expect(problems.consoleErrors).toEqual([])
    expect(problems.failedResponses).toEqual([])
  })

  it('pages through the peers without a reload, and keeps the page in the address', async () => {
    await page.click('#peer-next')
    await expect.poll(() => page.textContent('#peer-page')).toBe('51–55 of 55')
    expect(await page.locator('#peer-rows tr').count()).toBe(5)
    expect(new URL(page.url()).searchParams.get('offset')).toBe('50')
    expect(await page.getAttribute('#peer-next', 'aria-disabled')).toBe('true')
    await page.click('#peer-prev')
    await expect.poll(() => page.textContent('#peer-page')).toBe('1–50 of 55')
  })

  it('sorts peers by a column header, by keyboard', async () => {
    const firstColumn = () => page.locator('#peer-rows tr td:first-child').allTextContents()
    const sortInAddress = () => {
      const params = new URL(page.url()).searchParams
      // The defaults (username, asc) are left out of the address.
      return `${params.get('sort') ?? 'username'} ${params.get('order') ?? 'asc'}`
    }
    await page.focus('th[data-sort="files"] a')
    await page.keyboard.press('Enter')
    // The header's aria-sort changes once the new rows are in: wait for that, not for rows the old order had too.
    await expect.poll(() => page.getAttribute('th[data-sort="files"]', 'aria-sort')).toBe('descending')
    expect(sortInAddress()).toBe('files desc')
    expect((await firstColumn()).slice(0, 3)).toEqual(['alice', 'bob', 'peer-00'])
    await page.keyboard.press('Enter')
    await expect.poll(() => page.getAttribute('th[data-sort="files"]', 'aria-sort')).toBe('ascending')
    expect(sortInAddress()).toBe('files asc')
    // Fewest files first: a page of the 53 peers that share nothing, alice and bob on the next.
    const ascending = await firstColumn()
    expect(ascending[0]).toBe('peer-00')
    expect(ascending).not.toContain('alice')
    await page.click('th[data-sort="username"] a')
    await expect.poll(() => page.getAttribute('th[data-sort="username"]', 'aria-sort')).toBe('ascending')
    expect(sortInAddress()).toBe('username asc')
    expect((await firstColumn()).slice(0, 3)).toEqual(['alice', 'bob', 'peer-00'])
  })

  it('searches as you type and shows grouped results with a copyable hash and peer get line', async () => {
    await page.locator('#search').pressSequentially('concert', { delay: 40 })
    // The whole word's answer, not one for a prefix typed before it ("concer" finds the same one file).
    await expect
      .poll(() => page.textContent('#search-status'))
      .toBe('1 result with a live source for "concert"')
    expect(await page.locator('#results li').count()).toBe(1)
    const result = page.locator('#results li').first()
    expect(await result.locator('h3').textContent()).toBe('Concert Live.flac')
    expect(await result.locator('.sources').textContent()).toBe('2 live sources')
    expect(await result.textContent()).toContain('4.00 KiB')
    expect(await result.textContent()).toContain(CONCERT.sha256.slice(0, 12))
    expect(await result.textContent()).toContain(`peer get ${CONCERT.sha256}`)
    expect(new URL(page.url()).searchParams.get('q')).toBe('concert')
    await result.getByRole('button', { name: 'Copy the full sha256 of Concert Live.flac' }).click()
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(CONCERT.sha256)
    await result.getByRole('button', { name: 'Copy the peer get command for Concert Live.flac' }).click()
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(`peer get ${CONCERT.sha256}`)
    await page.screenshot({ path: join(outDir, 'dashboard.png'), fullPage: true })
  })

  it('turns a peer that logs out down without a reload, and drops it as a source', async () => {
    const bobState = page.locator('tr[data-peer="bob"] .state')
    expect(await bobState.textContent()).toBe('up')
    await apiLogout(directory.url, bobToken)
    await expect.poll(() => bobState.textContent(), { timeout: 10_000 }).toBe('down')
    await expect.poll(() => page.textContent('#stat-peers'), { timeout: 10_000 }).toBe('54 / 55')
    await expect
      .poll(() => page.textContent('#results li .sources'), { timeout: 10_000 })
      .toBe('1 live source')
    await page.selectOption('#peer-state', 'down')
    await expect.poll(() => page.locator('#peer-rows tr td:first-child').allTextContents()).toEqual(['bob'])
    expect(await page.textContent('#peer-page')).toBe('1–1 of 1')
    expect(problems.consoleErrors).toEqual([])
    expect(problems.failedResponses).toEqual([])
  })

  it('shows names with HTML in them as text and runs nothing', async () => {
    await page.fill('#search', '<')
    await expect.poll(() => page.locator('#results li').count()).toBe(2)
    const names = await page.locator('#results li h3').allTextContents()
    expect(names.sort()).toEqual([HOSTILE, HOSTILE_2].sort())
    await expect.poll(() => page.getByText(HOSTILE, { exact: true }).isVisible()).toBe(true)
    expect(await page.locator('#results img, #results script').count()).toBe(0)
    expect(problems.dialogs).toEqual([])
    expect(problems.consoleErrors).toEqual([])
    expect(problems.failedResponses).toEqual([])
  })

  it('serves a first paint that works without its script and escapes hostile names', async () => {
    const noScript = await browser.newContext({ javaScriptEnabled: false })
    const bare = await noScript.newPage()
    const seen = watchPage(bare)
    await bare.goto(`${directory.url}/?q=${encodeURIComponent('<')}&sort=files&order=desc`)
    expect((await bare.locator('#results li h3').allTextContents()).sort()).toEqual(
      [HOSTILE, HOSTILE_2].sort(),
    )
    expect(await bare.locator('#results img, #results script').count()).toBe(0)
    expect(await bare.locator('#peer-rows tr td:first-child').first().textContent()).toBe('alice')
    await bare.click('#peer-next')
    expect(await bare.textContent('#peer-page')).toBe('51–55 of 55')
    expect(seen).toEqual({ consoleErrors: [], dialogs: [], failedResponses: [] })
    await noScript.close()
  })

  it('reads well on a phone', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true })
    const small = await phone.newPage()
    const seen = watchPage(small)
    await small.goto(`${directory.url}/?q=concert`)
    await expect.poll(() => small.locator('html.js').count()).toBe(1)
    expect(await small.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    expect(await small.isVisible('th.hide-narrow')).toBe(false)
    await small.screenshot({ path: join(outDir, 'dashboard-phone.png'), fullPage: true })
    expect(seen).toEqual({ consoleErrors: [], dialogs: [], failedResponses: [] })
    await phone.close()
  })

  it('shows where a result lives and opens a peer’s folders, each with a peer get line to copy', async () => {
    const album = 'Nightjar Ensemble/Songs from Harrow Lane'
    const track = { ...fileEntry('01 opening.flac'), path: album }
    await apiPublish(directory.url, aliceToken, [CONCERT, fileEntry(HOSTILE), fileEntry(HOSTILE_2), track])
    await page.goto(`${directory.url}/`)
    await page.fill('#search', 'nightjar harrow')
    await expect.poll(() => page.locator('#results li').count()).toBe(1)
    expect(await page.textContent('#results li .place')).toBe(`in ${album}`)
    await page.getByRole('button', { name: 'Browse alice’s folders' }).click()
    await expect.poll(() => page.textContent('#browse-title')).toBe('alice’s folders')
    expect(await page.locator('#browse-folders h3').allTextContents()).toEqual(['Nightjar Ensemble'])
    expect(await page.locator('#browse-files h3').count()).toBe(3)
    await page.getByRole('button', { name: 'Nightjar Ensemble', exact: true }).click()
    await expect.poll(() => page.textContent('#browse-title')).toBe('alice/Nightjar Ensemble')
    expect(await page.textContent('#browse-get code')).toBe('peer get alice/Nightjar Ensemble')
    await page.getByRole('button', { name: `Copy the peer get command for ${album}` }).click()
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(`peer get alice/${album}`)
    await page.getByRole('button', { name: 'Songs from Harrow Lane', exact: true }).click()
    await expect.poll(() => page.locator('#browse-files h3').allTextContents()).toEqual(['01 opening.flac'])
    await page.click('#browse-up')
    await expect.poll(() => page.textContent('#browse-title')).toBe('alice/Nightjar Ensemble')
    await page.screenshot({ path: join(outDir, 'dashboard-browse.png'), fullPage: true })
    expect(problems.consoleErrors).toEqual([])
    expect(problems.failedResponses).toEqual([])
  })

  it('asks for a peer account first when reads need a token, without touching that peer', async () => {
    const closed = await startDirectoryProcess({ env: { READ_REQUIRES_AUTH: 'true', REGISTRATION: 'open' } })
    try {
      const carol = await apiLogin(closed.url, 'carol', 50003)
      const locked = await (await browser.newContext()).newPage()
      const seen = watchPage(locked)
      await locked.goto(`${closed.url}/`)
      expect(await locked.isVisible('#login-form')).toBe(true)
      expect(await locked.isVisible('#search')).toBe(false)
      expect(await locked.locator('#peer-rows tr').count()).toBe(0)
      await locked.screenshot({ path: join(outDir, 'dashboard-login.png') })
      await locked.fill('#login-user', 'carol')
      await locked.fill('#login-password', 'wrong password')
      await locked.keyboard.press('Enter')
      await expect.poll(() => locked.textContent('#login-error')).not.toBe('')
      await locked.fill('#login-password', 'browser password')
      await locked.click('#login-form button[type="submit"]')
      await expect.poll(() => locked.locator('#peer-rows tr').count()).toBe(1)
      expect(await locked.isVisible('#search')).toBe(true)
      // The session survives a reload; the peer keeps its own address and lease.
      await locked.reload()
      await expect.poll(() => locked.locator('#peer-rows tr').count()).toBe(1)
      expect(await locked.textContent('tr[data-peer="carol"] code')).toBe('http://127.0.0.1:50003')
      expect(await locked.textContent('tr[data-peer="carol"] .state')).toBe('up')
      const peers = await fetch(`${closed.url}/v1/peers`, { headers: { authorization: `Bearer ${carol}` } })
      expect((await peers.json()).peers[0]).toMatchObject({ url: 'http://127.0.0.1:50003', state: 'up' })
      // The one wrong password is the one failed answer, and the browser's one complaint is about it.
      expect(seen).toEqual({
        consoleErrors: [expect.stringMatching(/^Failed to load resource: .*status of 401/)],
        dialogs: [],
        failedResponses: ['401 /v1/login'],
      })
    } finally {
      await closed.stop('SIGKILL')
    }
  })
})
