import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'
import { DASHBOARD_SCRIPT_MODULE, dashboardScriptModule } from '../../build/dashboard-script.ts'

it('serves the browser script built from the current browser.ts (else: npm run build)', async () => {
  expect(readFileSync(DASHBOARD_SCRIPT_MODULE, 'utf8')).toBe(await dashboardScriptModule())
})
