import { afterEach, describe, expect, it } from 'vitest'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  type TestDirectory,
} from '../support/directory-app.ts'

const HOSTILE = `<script>alert(1)<script> & "quotes" 'too' &amp;.mp3`

let directory: TestDirectory
afterEach(() => directory?.close())

describe('the dashboard first paint (no browser)', () => {
  it('renders a search server-side with hostile names escaped as text', async () => {
    directory = createTestDirectory()
    const token = await login(directory, 'alice')
    await publish(directory, token, [fileEntry(HOSTILE), fileEntry('Concert Live.flac')])
    const page = await directory.request(`/?q=${encodeURIComponent('<script')}`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toContain('text/html')
    const html = await page.text()
    expect(html).toContain(
      '<h3>&lt;script&gt;alert(1)&lt;script&gt; &amp; &quot;quotes&quot; &#39;too&#39; &amp;amp;.mp3</h3>',
    )
    expect(html).not.toContain('<script>alert')
    expect(html).toContain(`peer get ${fileEntry(HOSTILE).sha256}`)
    expect(html).toContain('1 live source')
    expect(html).toContain('value="&lt;script"')
    expect(html).not.toContain('Concert Live.flac')
    // The only script on the page is the dashboard's own file.
    expect(html.match(/<script/g)).toEqual(['<script'])
    expect(html).toContain('<script src="/dashboard.js" defer="">')
  })

  it('shows the variants of one sha256 apart, each with its manifest', async () => {
    directory = createTestDirectory()
    const honest = fileEntry('twice.iso', 'one content')
    const forged = { ...honest, manifest: 'f'.repeat(64) }
    await publish(directory, await login(directory, 'alice'), [honest])
    await publish(directory, await login(directory, 'bob', { url: 'http://127.0.0.1:50052' }), [honest])
    await publish(directory, await login(directory, 'mallory', { url: 'http://127.0.0.1:50053' }), [forged])
    const html = await (await directory.request('/?q=twice')).text()
    const items = [...html.matchAll(/data-variant="([^"]+)"/g)].map((m) => m[1])
    expect(items).toEqual([
      `${honest.sha256}:${honest.manifest}:1000:1048576`,
      `${honest.sha256}:${'f'.repeat(64)}:1000:1048576`,
    ])
    expect(html).toContain('2 live sources')
    expect(html).toContain(`<code title="${'f'.repeat(64)}">ffffffffffff</code>`)
    expect(html.match(/one of 2 variants of this sha256/g)).toHaveLength(2)
  })

  it('marks peers reached through a relay', async () => {
    directory = createTestDirectory()
    await login(directory, 'alice')
    await login(directory, 'homer', { url: 'http://203.0.113.5:7000/relayed/homer' })
    const html = await (await directory.request('/')).text()
    const row = (name: string) => new RegExp(`<tr data-peer="${name}">.*?</tr>`).exec(html)?.[0] ?? ''
    expect(row('homer')).toContain('via relay')
    expect(row('alice')).not.toContain('via relay')
  })

  it('keeps sort, filter and page in links and ignores nonsense in the query', async () => {
    directory = createTestDirectory()
    for (const name of ['a', 'b', 'c']) await login(directory, name)
    directory.clock.advance(120) // every lease (60 s) has run out
    await login(directory, 'b')
    const html = await (await directory.request('/?state=up&sort=files&order=desc')).text()
    expect(html).toContain('data-peer="b"')
    expect(html).not.toContain('data-peer="a"')
    expect(html).toContain(
      'data-sort="files" data-first="desc" class="num" aria-sort="descending"><a href="/?state=up&amp;sort=files"',
    )
    expect(html).toContain(
      'data-sort="lastSeen" data-first="desc" aria-sort="none"><a href="/?state=up&amp;sort=lastSeen&amp;order=desc"',
    )
    const odd = await directory.request('/?sort=password_hash&order=sideways&offset=-5&state=%00&q=')
    expect(odd.status).toBe(200)
    const oddHtml = await odd.text()
    expect(oddHtml).toContain('1–3 of 3')
    expect(oddHtml).toContain('last seen 0 s ago')
    expect(oddHtml).toContain('last seen 2 min ago')
  })

  it('renders no peers, results or counts before login when reads need a token', async () => {
    directory = createTestDirectory({ READ_REQUIRES_AUTH: 'true', REGISTRATION: 'open' })
    const token = await login(directory, 'alice')
    await publish(directory, token, [fileEntry('secret.txt')])
    const html = await (await directory.request('/?q=secret')).text()
    expect(html).toContain('data-reads-need-login="true"')
    expect(html).not.toContain('data-peer="alice"')
    expect(html).not.toContain('secret.txt</h3>')
    // Not even the counts: members only means no number leaves without a token.
    expect(html).toContain('<span class="value" id="stat-peers">–</span>')
    expect(html).toContain('<span class="value" id="stat-bytes">–</span>')
  })

  it('serves its script and stylesheet with their content types', async () => {
    directory = createTestDirectory()
    const js = await directory.request('/dashboard.js')
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(await js.text()).not.toContain('innerHTML')
    const css = await directory.request('/dashboard.css')
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8')
  })
})
