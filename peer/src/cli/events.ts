import { daemonCommand, daemonFor } from './common.ts'
import type { ControlAnswer } from './control-client.ts'
import { formatBytes, ordinal } from './format.ts'
import { printable } from './output.ts'

type Answer = ControlAnswer<'events'>

/** The fields each event type carries, beside `type` and `time` (the Events RPC sends them all). */
const FIELDS: Record<string, string[]> = {
  'download-started': ['name', 'sha256', 'size'],
  'download-progress': ['name', 'sha256', 'size', 'doneBytes', 'activeSources'],
  'download-queued': ['name', 'sha256', 'size', 'queuedAt', 'queuePosition'],
  'download-completed': ['name', 'sha256', 'size', 'path', 'seconds', 'sources'],
  'download-failed': ['name', 'sha256', 'size', 'reason'],
  'wish-matched': ['wishId', 'query', 'name', 'path', 'sha256', 'size'],
  'upload-served': ['username', 'name', 'sha256', 'bytes'],
  session: ['state', 'relay', 'reason'],
  missed: ['count'],
}
/** 64-bit counts, which protobuf's JSON writes as strings. */
const COUNTS = new Set(['size', 'doneBytes', 'bytes', 'count'])

/** One event as a flat object: `type`, `time`, then the fields of its type. */
export function flatEvent(answer: Answer): Record<string, unknown> {
  const parts = [answer.download, answer.wishMatched, answer.uploadServed, answer.session, answer.missed]
  const part = (parts.find((p) => p && Object.keys(p).length > 0) ?? {}) as Record<string, unknown>
  const flat: Record<string, unknown> = { type: answer.type, time: answer.time }
  for (const field of FIELDS[answer.type] ?? Object.keys(part)) {
    const value = part[field]
    flat[field] = COUNTS.has(field) ? Number(value ?? 0) : (value ?? '')
  }
  return flat
}

function line(event: Record<string, unknown>): string {
  const { type, time } = event
  const what = (() => {
    switch (type) {
      case 'download-started':
        return `${event.name} (${formatBytes(event.size as number)})`
      case 'download-progress':
        return `${event.name}: ${formatBytes(event.doneBytes as number)} of ${formatBytes(event.size as number)} from ${event.activeSources} sources`
      case 'download-queued':
        return event.queuePosition
          ? `${event.name}: queued at ${event.queuedAt}: ${ordinal(event.queuePosition as number)}`
          : `${event.name}: served by ${event.queuedAt} now (its queue let us in)`
      case 'download-completed':
        return `${event.path} in ${(event.seconds as number).toFixed(1)} s from ${(event.sources as string[]).join(', ') || 'nobody'}`
      case 'download-failed':
        return `${event.name}: ${event.reason}`
      case 'wish-matched':
        return `"${event.query}" (${event.wishId}): ${event.path ? `${event.path}/` : ''}${event.name}`
      case 'upload-served':
        return `${formatBytes(event.bytes as number)} of ${event.name} to ${event.username || 'an anonymous caller'}`
      case 'session':
        return [
          event.state && `directory ${event.state}`,
          event.relay && `relay ${event.relay}`,
          event.reason,
        ]
          .filter(Boolean)
          .join(', ')
      case 'missed':
        return `${event.count} events missed (this reader fell behind)`
      default:
        return ''
    }
  })()
  return printable(`${time} ${type} ${what}`)
}

/** Waits until stdout takes more: a reader that stops reading slows this command, never the daemon. */
const written = (text: string) =>
  new Promise<void>((resolve) => {
    if (process.stdout.write(text)) resolve()
    else process.stdout.once('drain', resolve)
  })

export const eventsCommand = daemonCommand(
  'events',
  'follow the daemon’s events from now on, one line each, until Ctrl-C',
)
  .option('--json', 'one JSON object per line (NDJSON), each with `type` and `time`')
  .addHelpText(
    'after',
    '\nExamples:\n  peer events\n  peer events --json | jq -c \'select(.type == "download-completed")\'',
  )
  .action(async (opts) => {
    const { client } = daemonFor(opts)
    // Ctrl-C is how a follower ends: not a failure. A closed pipe (`| head`) ends it the same way.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(0))
    process.stdout.on('error', () => process.exit(0))
    for await (const answer of client.stream('events', {})) {
      const event = flatEvent(answer)
      await written(`${opts.json ? JSON.stringify(event) : line(event)}\n`)
    }
  })
