// Just the surface of webtorrent@3 the comparison bench uses (the package ships no types).
declare module 'webtorrent' {
  import type { EventEmitter } from 'node:events'

  export type ClientOptions = {
    dht?: boolean
    lsd?: boolean
    tracker?: boolean
    natUpnp?: boolean
    natPmp?: boolean
    utp?: boolean
    utPex?: boolean
  }

  export interface Torrent extends EventEmitter {
    infoHash: string
    length: number
    torrentFile: Uint8Array
    addPeer(address: string): boolean
  }

  export default class WebTorrent extends EventEmitter {
    constructor(options?: ClientOptions)
    seed(path: string, options: { announce?: string[] }, onSeed: (torrent: Torrent) => void): Torrent
    add(torrentFile: Uint8Array, options: { path: string; announce?: string[] }): Torrent
    address(): { port: number } | null
    destroy(onClose?: (err?: Error) => void): void
  }
}
