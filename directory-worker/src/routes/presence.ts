import { createRoute } from '@hono/zod-openapi'
import { ApiError } from '../errors.ts'
import { requireAuth, viewerSession } from '../middleware/require-auth.ts'
import { bearer, refusal, sessionTokenRefused, storageDown } from '../responses.ts'
import { createRouter } from '../router.ts'

const presence = createRoute({
  method: 'get',
  path: '/presence',
  operationId: 'presence',
  tags: ['auth'],
  summary:
    'Stay up while holding this WebSocket: up while it is open and answers pings, down at once when it closes',
  description:
    'A WebSocket upgrade. The token goes as "Authorization: Bearer <token>", or, for clients that cannot set headers, as the subprotocol list "peerdir.v1, bearer.<token>" (answered with peerdir.v1). The client sends the text message "ping" about every third of the lease and is answered "pong" (on Node the directory pings too); a socket silent for a lease is closed and the peer is down. One socket per peer: a newer one replaces it (closed 4000); a logout or a removed account closes it (4001). Where the directory cannot hold sockets (501) the peer heartbeats instead.',
  security: bearer,
  middleware: [requireAuth(true)] as const,
  responses: {
    101: { description: 'Switching protocols: the peer is up while the socket is held' },
    401: sessionTokenRefused,
    403: refusal('A viewer session (logged in without url) has no presence (viewer_session)'),
    426: refusal('Not a WebSocket upgrade (upgrade_required)'),
    501: refusal('This directory keeps leases in its database; heartbeat instead (presence_unavailable)'),
    503: storageDown,
  },
})

export const presenceRoutes = createRouter().openapi(presence, async (c) => {
  const { sessionId, peerId, viewer, username } = c.get('auth')
  if (viewer) throw viewerSession()
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
    throw new ApiError(426, 'upgrade_required', 'GET /v1/presence is a WebSocket; send it as an upgrade.', {
      Upgrade: 'websocket',
    })
  }
  // The socket is the runtime's (Node's ws server, a Durable Object): answered as it comes.
  const socket = c.get('presence').socket(c, { sessionId, peerId, username })
  if (!socket) {
    throw new ApiError(
      501,
      'presence_unavailable',
      'This directory keeps leases in its database and has no presence socket; send POST /v1/heartbeat instead.',
    )
  }
  return (await socket) as never
})
