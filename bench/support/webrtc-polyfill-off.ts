// Imported first by the WebTorrent bench peer (its own process) and nowhere else: resolves
// `webrtc-polyfill` to a module whose RTC classes are undefined. Its backend, node-datachannel, needs a
// prebuilt binary that its install script would download from outside the npm registry, which this
// project denies; WebTorrent's loopback TCP transfer needs no WebRTC (simple-peer then reports
// WEBRTC_SUPPORT false and WebTorrent makes no WebRTC connections).
import { registerHooks } from 'node:module'

const emptyWebRtc = `data:text/javascript,${encodeURIComponent(
  'export const RTCPeerConnection = undefined, RTCSessionDescription = undefined, RTCIceCandidate = undefined\nexport default {}',
)}`

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === 'webrtc-polyfill') return { url: emptyWebRtc, format: 'module', shortCircuit: true }
    return nextResolve(specifier, context)
  },
})
