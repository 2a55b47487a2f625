import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'

/** Clock ticks per second of /proc's times (USER_HZ: 100 on every Linux this runs on). */
const TICKS = 100

/** CPU-seconds (user + system) a live process has used so far, from /proc/<pid>/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces, so cut at its closing paren): state is
  // field 3, utime 14 and stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS
}

/** CPU-seconds of this process so far (it serves the Node HTTP alternative in-process). */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}

/**
 * curl fetching `url` into `out`: wall seconds and curl's own CPU-seconds, which the shell's `times`
 * reports for its finished child (a process that has exited has no /proc entry to read).
 */
export function curlDownload(url: string, out: string): Promise<{ seconds: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    // -k: an https:// URL is a bench server's self-signed certificate (the CA check is not measured).
    execFile('sh', ['-c', 'curl -sS -k -o "$1" "$2" && times', 'sh', out, url], (err, stdout) => {
      if (err) return reject(err)
      const seconds = (performance.now() - started) / 1000
      // `times` prints the shell's user and system time, then its children's: "0m0.880000s 0m0.200000s".
      const children = stdout.trim().split('\n').at(-1) ?? ''
      const cpu = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce(
        (sum, m) => sum + Number(m[1]) * 60 + Number(m[2]),
        0,
      )
      resolve({ seconds, cpu })
    })
  })
}
