/** The orders GET /v1/peers offers (and the dashboard's sortable columns). */
export const PEER_SORTS = ['username', 'state', 'files', 'lastSeen'] as const
export type PeerSort = (typeof PEER_SORTS)[number]
export const ORDERS = ['asc', 'desc'] as const
export type Order = (typeof ORDERS)[number]
