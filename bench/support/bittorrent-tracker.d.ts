// Just the surface of bittorrent-tracker's server the comparison bench uses (the package ships no types).
declare module 'bittorrent-tracker/server' {
  import type { Server as HttpServer } from 'node:http'
  export default class Server {
    constructor(options: { udp?: boolean; ws?: boolean; stats?: boolean; trustProxy?: boolean })
    http: HttpServer
    listen(port: number, hostname: string, onListening: () => void): void
    close(onClose?: () => void): void
    on(event: 'error' | 'warning', listener: (err: Error) => void): void
  }
}
