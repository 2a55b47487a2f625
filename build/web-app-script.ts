// The peer's web app script (peer/src/ui/browser/main.ts and its panels) compiled into a module of the
// daemon, peer/src/ui/script.gen.ts, as the dashboard's is (browser-script.ts).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { browserScriptModule } from './browser-script.ts'

const root = join(import.meta.dirname, '..')
export const WEB_APP_SCRIPT_MODULE = join(root, 'peer/src/ui/script.gen.ts')

/** The text of script.gen.ts as the sources make it now. */
export const webAppScriptModule = () =>
  browserScriptModule({
    entry: join(root, 'peer/src/ui/browser/main.ts'),
    exportName: 'webAppJs',
    madeFrom: 'browser/main.ts (build/web-app-script.ts)',
  })

export async function writeWebAppScript() {
  writeFileSync(WEB_APP_SCRIPT_MODULE, await webAppScriptModule())
}
