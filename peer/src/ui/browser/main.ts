// The web app's script (built into ../script.gen.ts, served as /app/app.js): each panel reads its state,
// then the daemon's event stream keeps them live.
import { type AppEvent, attempt, follow, setReporter } from './api.ts'
import { $ } from './dom.ts'
import { downloadEvent, refreshDownloads } from './downloads.ts'
import { startSearch } from './search.ts'
import { refreshShared, sharedEvent } from './shared.ts'
import { refreshStatus, startStatus, statusEvent } from './status.ts'
import { refreshWishes, startWishes, wishEvent } from './wishes.ts'

const line = $('status-line')
setReporter((message) => {
  line.textContent = message
})

const resync = attempt(() =>
  Promise.all([refreshStatus(), refreshDownloads(), refreshWishes(), refreshShared()]),
)

startSearch()
startWishes()
startStatus()
follow((event: AppEvent) => {
  downloadEvent(event)
  wishEvent(event)
  sharedEvent(event)
  statusEvent(event)
}, resync)
