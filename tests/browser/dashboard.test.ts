import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { browserRequired, chromiumPath, launchChromium } from '../support/browser.ts'
import { fileEntry } from '../support/directory-app.ts'
import { type DirectoryProcess, repoRoot, startDirectoryProcess } from '../support/directory-process.ts'

if (!chromiumPath) {
  if (browserRequired)
    throw new Error('REQUIRE_BROWSER=1 but no Chromium was found: apt-get install chromium')
  console.warn('dashboard browser tests skipped: no Chromium on this machine (apt-get install chromium)')
}

const HOSTILE = '<script>alert(1)<script> & "quotes".mp3'
const HOSTILE_2 = '<img src=x onerror=alert(2)>.flac'
const outDir = join(repoRoot, 'test-results')

async function loginPeer(directory: DirectoryProcess, username: string, port: number) {
  const response = await fetch(`${directory.url}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'browser password', url: `http://127.0.0.1:${port}` }),
  })
  return ((await response.json()) as { token: string }).token
}

async function publish(directory: DirectoryProcess, token: string, files: ReturnType<typeof fileEntry>[]) {
  await fetch(`${directory.url}/v1/index`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ files }),
  })
}

describe.skipIf(!chromiumPath)('the dashboard in headless Chromium', () => {
  let browser: Browser
  let directory: DirectoryProcess
  let page: Page
  const consoleErrors: string[] = []
  const dialogs: string[] = []
  let bobToken: string

  beforeAll(async () => {
    directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '600' } })
    const alice = await loginPeer(directory, 'alice', 50001)
    bobToken = await loginPeer(directory, 'bob', 50002)
    await publish(directory, alice, [
      fileEntry('Concert Live.flac', 'concert', 4096),
      fileEntry(HOSTILE),
      fileEntry(HOSTILE_2),
    ])
    await publish(directory, bobToken, [
      fileEntry('Concert Live.flac', 'concert', 4096),
      fileEntry('notes.txt'),
    ])
    browser = await launchChromium()
    page = await browser.newPage()
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text())
    })
    page.on('pageerror', (err) => consoleErrors.push(err.message))
    page.on('dialog', async (dialog) => {
      dialogs.push(dialog.message())
      await dialog.dismiss()
    })
    await page.goto(`${directory.url}/`)
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await directory?.stop('SIGKILL')
  })

  it('loads with no console errors and shows the right counts', async () => {
    await expect.poll(() => page.textContent('#stat-peers')).toBe('2 / 2')
    expect(await page.textContent('#stat-files')).toBe('5')
    expect(await page.textContent('#stat-unique')).toBe('4')
    expect(await page.locator('#peer-rows tr').count()).toBe(2)
    expect(await page.getAttribute('a[href="/docs"]', 'href')).toBe('/docs')
    expect(consoleErrors).toEqual([])
  })

  it('searches as you type and shows grouped results with a ready peer get line', async () => {
    await page.fill('#search', 'concert')
    await expect.poll(() => page.locator('#results li').count()).toBe(1)
    const result = page.locator('#results li').first()
    expect(await result.locator('h3').textContent()).toBe('Concert Live.flac')
    expect(await result.textContent()).toContain('2 live sources')
    expect(await result.textContent()).toContain(
      `peer get ${fileEntry('Concert Live.flac', 'concert').sha256}`,
    )
    mkdirSync(outDir, { recursive: true })
    await page.screenshot({ path: join(outDir, 'dashboard.png'), fullPage: true })
  })

  it('shows names with HTML in them as text and runs nothing', async () => {
    await page.fill('#search', '<')
    await expect.poll(() => page.locator('#results li').count()).toBe(2)
    const names = await page.locator('#results li h3').allTextContents()
    expect(names.sort()).toEqual([HOSTILE, HOSTILE_2].sort())
    expect(await page.locator('#results img, #results script').count()).toBe(0)
    expect(dialogs).toEqual([])
    expect(consoleErrors).toEqual([])
  })

  it('turns a peer that logs out down without a reload', async () => {
    const bobState = page.locator('tr[data-peer="bob"] td:nth-child(2) span').first()
    expect(await bobState.textContent()).toBe('up')
    await fetch(`${directory.url}/v1/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bobToken}` },
    })
    await expect.poll(() => bobState.textContent(), { timeout: 10_000 }).toBe('down')
    await expect.poll(() => page.textContent('#stat-peers'), { timeout: 10_000 }).toBe('1 / 2')
  })

  it('sorts peers by a column header, by keyboard', async () => {
    await page.focus('th[data-sort="username"] button')
    await page.keyboard.press('Enter')
    await expect
      .poll(() => page.locator('#peer-rows tr td:first-child').allTextContents())
      .toEqual(['bob', 'alice'])
    expect(await page.getAttribute('th[data-sort="username"]', 'aria-sort')).toBe('descending')
  })

  it('asks for a peer account first when reads need a token', async () => {
    const closed = await startDirectoryProcess({ env: { READ_REQUIRES_AUTH: 'true' } })
    try {
      await loginPeer(closed, 'carol', 50003)
      const locked = await browser.newPage()
      await locked.goto(`${closed.url}/`)
      expect(await locked.isVisible('#login-form')).toBe(true)
      expect(await locked.isVisible('#search')).toBe(false)
      await locked.fill('#login-user', 'carol')
      await locked.fill('#login-password', 'browser password')
      await locked.click('button[type="submit"]')
      await expect.poll(() => locked.locator('#peer-rows tr').count()).toBe(1)
      expect(await locked.isVisible('#search')).toBe(true)
      await locked.close()
    } finally {
      await closed.stop('SIGKILL')
    }
  })
})
