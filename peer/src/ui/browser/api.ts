// Talking to the daemon: JSON reads and changes under /app/api/, and its one event stream.

export type AppEvent = { type: string; [key: string]: unknown }

/** Where errors go: the status line (main.ts sets it). */
export let report: (message: string) => void = () => {}
export const setReporter = (f: (message: string) => void) => {
  report = f
}

async function answer<T>(response: Response): Promise<T> {
  const body = (await response.json().catch(() => ({}))) as T & { error?: string }
  if (!response.ok) throw new Error(body.error ?? `the daemon answered ${response.status}`)
  return body
}

export async function read<T>(
  name: string,
  params: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<T> {
  const query = new URLSearchParams(params).toString()
  return answer<T>(await fetch(`/app/api/${name}${query ? `?${query}` : ''}`, { signal }))
}

export async function change<T>(name: string, body: Record<string, unknown> = {}): Promise<T> {
  return answer<T>(
    await fetch(`/app/api/${name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  )
}

/** Runs `action`, saying on the status line why it failed. */
export const attempt = (action: () => Promise<unknown>) => () =>
  void action().catch((err: unknown) => report(err instanceof Error ? err.message : String(err)))

/**
 * Follows the daemon's events; `resync` runs when the stream (re)opens or the page fell behind, so the
 * panels read their state again then, and never on a timer.
 */
export function follow(onEvent: (event: AppEvent) => void, resync: () => void) {
  const source = new EventSource('/app/api/events')
  source.addEventListener('open', resync)
  source.addEventListener('message', (message) => {
    const event = JSON.parse(message.data) as AppEvent
    if (event.type === 'missed') resync()
    else onEvent(event)
  })
}
