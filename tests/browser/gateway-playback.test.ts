import { createHash } from 'node:crypto'
import { readdirSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromiumPath, launchChromium } from '../support/browser.ts'
import { listen } from '../support/ports.ts'
import { mustSkip } from '../support/requirements.ts'
import { useTestNetwork } from '../support/test-network.ts'

const noBrowser = mustSkip(
  'BROWSER',
  chromiumPath ? undefined : 'the gateway playback test needs Chromium (apt-get install chromium)',
)

/** Two seconds of a 440 Hz tone as a 16-bit mono WAV at 8 kHz: a real media file, made here. */
function toneWav(seconds = 2, rate = 8000): Buffer {
  const samples = seconds * rate
  const wav = Buffer.alloc(44 + samples * 2)
  wav.write('RIFF', 0)
  wav.writeUInt32LE(36 + samples * 2, 4)
  wav.write('WAVEfmt ', 8)
  wav.writeUInt32LE(16, 16) // fmt chunk size
  wav.writeUInt16LE(1, 20) // PCM
  wav.writeUInt16LE(1, 22) // mono
  wav.writeUInt32LE(rate, 24)
  wav.writeUInt32LE(rate * 2, 28) // bytes per second
  wav.writeUInt16LE(2, 32) // bytes per frame
  wav.writeUInt16LE(16, 34) // bits per sample
  wav.write('data', 36)
  wav.writeUInt32LE(samples * 2, 40)
  for (let i = 0; i < samples; i++) {
    wav.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2)
  }
  return wav
}

type MediaState = { found: boolean; readyState: number; error: number | null; currentTime: number }

/** The media element of the page Chromium made for a media URL, once it has data or an error. */
async function mediaState(page: Page): Promise<MediaState> {
  // Not a timed assertion: a player that never gets there is reported as it stands after 20 s.
  await page
    .waitForFunction(
      () => {
        const media = document.querySelector<HTMLMediaElement>('video, audio')
        return media !== null && (media.readyState >= 2 || media.error !== null)
      },
      undefined,
      { polling: 100, timeout: 20_000 },
    )
    .catch(() => {})
  return page.evaluate(() => {
    const media = document.querySelector<HTMLMediaElement>('video, audio')
    return {
      found: media !== null,
      readyState: media?.readyState ?? 0,
      error: media?.error?.code ?? null,
      currentTime: media?.currentTime ?? 0,
    }
  })
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

const network = useTestNetwork()

describe.skipIf(noBrowser)('the gateway in headless Chromium', () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await launchChromium()
  })
  afterAll(async () => {
    await browser?.close()
  })

  it('plays a gateway URL opened directly, shared or fetched through `peer url`', async () => {
    const wav = toneWav()
    const seed = await network.peer('tone-seed')
    writeFileSync(join(seed.dir, 'tone.wav'), wav)
    await seed.waitFor(/published changes: \+1/)
    const listener = await network.peer('listener')
    const printed = await listener.cli(['url', 'tone.wav'])
    expect(printed.code, printed.stderr).toBe(0)
    const page = await browser.newPage()
    try {
      // Shared by the daemon (no capability needed), then fetched from the seed as it plays.
      for (const url of [`http://127.0.0.1:${seed.port}/content/${sha(wav)}`, printed.stdout.trim()]) {
        await page.goto(url)
        const state = await mediaState(page)
        expect(state.found, url).toBe(true)
        expect(state.error, url).toBeNull()
        expect(state.readyState, url).toBeGreaterThanOrEqual(2)
      }
    } finally {
      await page.close()
    }
  })

  it('plays nothing for a page of another site that embeds a gateway URL, even one with a capability', async () => {
    const wav = toneWav()
    const seed = await network.peer('embed-seed')
    writeFileSync(join(seed.dir, 'embedded.wav'), wav)
    await seed.waitFor(/published changes: \+1/)
    const target = await network.peer('embed-target')
    const printed = await target.cli(['url', 'embedded.wav'])
    expect(printed.code, printed.stderr).toBe(0)
    // Another origin on this machine (same site, another port): its page names the URL in a player.
    const site = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(`<!doctype html><video src="${printed.stdout.trim()}" autoplay muted></video>`)
    })
    const sitePort = await listen(site)
    const page = await browser.newPage()
    try {
      await page.goto(`http://127.0.0.1:${sitePort}/`)
      const state = await mediaState(page)
      expect(state.error).toBe(4) // MEDIA_ERR_SRC_NOT_SUPPORTED: the gateway answered 403
      const status = JSON.parse((await target.cli(['status', '--json'])).stdout)
      expect(status.activeDownloads).toBe(0)
      expect(readdirSync(target.dir).filter((name) => name.includes('embedded'))).toEqual([])
    } finally {
      await page.close()
      site.close()
    }
  })
})
