import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'
import { WEB_APP_SCRIPT_MODULE, webAppScriptModule } from '../../build/web-app-script.ts'

it('serves the web app script built from the current browser/ sources (else: npm run build)', async () => {
  expect(readFileSync(WEB_APP_SCRIPT_MODULE, 'utf8')).toBe(await webAppScriptModule())
})
