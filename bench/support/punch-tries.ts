// Run on a home machine (`ip netns exec <home> node --import tsx bench/support/punch-tries.ts URL N`):
// asks the relayed peer's relay for N introductions in turn and punches each, printing one JSON line
// with how many made a TLS link (h2) to the peer, the keys presented and each try's milliseconds.
import { spkiFingerprint } from '../../peer/src/wire/peer-connection.ts'
import { punchToRelayedPeer } from '../../peer/src/wire/punched-link.ts'

const [url = '', count = '20'] = process.argv.slice(2)
const tries = Number(count)
const keys = new Set<string>()
const ms: number[] = []
const failures: string[] = []
for (let i = 0; i < tries; i++) {
  const started = performance.now()
  try {
    const socket = await punchToRelayedPeer(new URL(url))
    const certificate = socket.getPeerX509Certificate()
    if (certificate) keys.add(spkiFingerprint(certificate))
    ms.push(Math.round(performance.now() - started))
    socket.destroy()
  } catch (err) {
    failures.push(err instanceof Error ? err.message : String(err))
  }
}
console.log(JSON.stringify({ tries, punched: ms.length, keys: [...keys], ms, failures }))
