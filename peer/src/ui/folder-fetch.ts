import { dirname } from 'node:path'
import { create } from '@bufbuild/protobuf'
import { Code, ConnectError } from '@connectrpc/connect'
import { contentLookup } from '../daemon/content-lookup.ts'
import type { ControlledDaemon } from '../daemon/control-service.ts'
import { contentThere, folderFilePlace, savedAs } from '../daemon/folder-file.ts'
import { browsePeer } from '../daemon/peer-browse.ts'
import { BrowseRequestSchema } from '../gen/peerdir/v1/control_pb.ts'

/** Files fetched at once, as `peer get <user>/<folder>` does (get-folder.ts). */
const AT_ONCE = 4
/** The most files one folder fetch lists. */
const MAX_FILES = 10_000

type Listed = { name: string; path: string; sha256: string }

/**
 * The web app's Download folder: every file under `username`'s `folder`, into the shared folder under
 * the folder's last name, structure kept, each file from every live holder (a download of the daemon,
 * shown in Downloads by the events). Places are checked before anything starts; returns the file count
 * and fetches in the background.
 */
export async function fetchFolder(daemon: ControlledDaemon, username: string, folder: string) {
  const files: Listed[] = []
  let cursor = ''
  do {
    const request = create(BrowseRequestSchema, { username, path: folder, recursive: true, cursor })
    const page = await browsePeer(daemon, request)
    files.push(...page.files.map((f) => ({ name: f.name, path: f.path, sha256: f.sha256 })))
    cursor = page.cursor
  } while (cursor && files.length < MAX_FILES)
  const base = folder.replace(/\/+$/, '')
  // The folder's own name, or the user's at the top of their share (as `peer get alice/` does).
  const top = base.split('/').at(-1) || username
  const planned = files.map((file) => {
    const inside = file.path === base || base === '' || file.path.startsWith(`${base}/`)
    if (!inside) throw new ConnectError(`"${file.path}" is not inside ${base}`, Code.DataLoss)
    const rest = file.path === base ? '' : file.path.slice(base ? base.length + 1 : 0)
    return { ...file, place: folderFilePlace(daemon.sharedDir, rest ? `${top}/${rest}` : top, file.name) }
  })
  const { variantsOf } = contentLookup(daemon)
  const queue = [...planned]
  const worker = async () => {
    for (let file = queue.shift(); file; file = queue.shift()) {
      try {
        const wanted = savedAs(await variantsOf(file.sha256), file.name)
        // An earlier fetch's verified copy in its place counts as done (a rerun fetches what is missing).
        if ((await contentThere(file.place, wanted, daemon.index)) !== undefined) continue
        await daemon.downloads.start(wanted, dirname(file.place)).done
      } catch {
        // Its failure is in Downloads (the events); the other files go on.
      }
    }
  }
  for (let i = 0; i < AT_ONCE; i++) void worker()
  return { files: planned.length }
}
