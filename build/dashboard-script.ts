// The dashboard's browser script (directory-worker/src/dashboard/browser.ts) compiled into a module of
// the directory, dashboard/script.gen.ts (browser-script.ts).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { browserScriptModule } from './browser-script.ts'

const root = join(import.meta.dirname, '..')
export const DASHBOARD_SCRIPT_MODULE = join(root, 'directory-worker/src/dashboard/script.gen.ts')

/** The text of script.gen.ts as the sources make it now. */
export const dashboardScriptModule = () =>
  browserScriptModule({
    entry: join(root, 'directory-worker/src/dashboard/browser.ts'),
    exportName: 'dashboardJs',
    madeFrom: 'browser.ts (build/dashboard-script.ts)',
  })

export async function writeDashboardScript() {
  writeFileSync(DASHBOARD_SCRIPT_MODULE, await dashboardScriptModule())
}
