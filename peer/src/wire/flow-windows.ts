/**
 * HTTP/2 flow-control windows. Node's defaults (64 KiB per stream and per connection) cap a stream at
 * a few tens of MB/s on loopback; larger windows let the sender keep the pipe full. They also bound how
 * much a slow reader buffers, so they are as large as throughput needs (1 MiB chunks, many in flight)
 * and no larger.
 */
export const STREAM_WINDOW = 4 * 1024 * 1024
export const SESSION_WINDOW = 32 * 1024 * 1024
