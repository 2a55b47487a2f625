type ListedPeer = { username: string; state: string; lastSeen: string }

async function listedPeers(directoryUrl: string): Promise<Map<string, ListedPeer>> {
  const answer = await fetch(`${directoryUrl}/v1/peers`)
  if (answer.status !== 200) throw new Error(`GET /v1/peers answered ${answer.status}`)
  const body = (await answer.json()) as { peers: ListedPeer[] }
  return new Map(body.peers.map((peer) => [peer.username, peer]))
}

/**
 * Waits until the directory has taken `count` heartbeats from each of `usernames` after this call
 * (each renewal moves the peer's `lastSeen`), and throws, naming it, if one is down at any look
 * before that. An order the directory saw, not a span of time hoped to be covered by a lease: the
 * lease must only outlast one heartbeat period plus the machine's pauses.
 */
export async function heartbeatsSeen(
  directoryUrl: string,
  usernames: string[],
  count: number,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const seen = new Map<string, Set<string>>()
  for (;;) {
    const peers = await listedPeers(directoryUrl)
    for (const username of usernames) {
      const peer = peers.get(username)
      if (peer?.state !== 'up')
        throw new Error(`${username} is ${peer?.state ?? 'not listed'} after heartbeats`)
      const times = seen.get(username) ?? new Set([peer.lastSeen])
      times.add(peer.lastSeen)
      seen.set(username, times)
    }
    // The first lastSeen of each is from before the wait: `count` renewals make count + 1 values.
    if (usernames.every((username) => (seen.get(username)?.size ?? 0) > count)) return
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${count} heartbeats of ${usernames.join(', ')}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The `lastSeen` the directory lists for `username`, in epoch ms (its last login or heartbeat). */
export async function lastSeen(directoryUrl: string, username: string): Promise<number> {
  const peer = (await listedPeers(directoryUrl)).get(username)
  if (!peer) throw new Error(`${username} is not listed`)
  return Date.parse(peer.lastSeen)
}
