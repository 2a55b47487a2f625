import { afterAll, afterEach, beforeAll } from 'vitest'
import { type DirectoryProcess, startDirectoryProcess } from './directory-process.ts'
import { type PeerProcess, startPeer, testStateRoot } from './peer-process.ts'

type Stoppable = { stop: (signal?: NodeJS.Signals) => Promise<unknown> }
type PeerOptions = Omit<Parameters<typeof startPeer>[0], 'name' | 'directoryUrl' | 'stateRoot'> & {
  /** Another directory than the network's (a lying one in front of it). */
  directoryUrl?: string
}

/**
 * A test file's network: one directory process for the file, and the peers each test starts, killed
 * with -9 after that test (or, with `logOutAfterEach`, stopped with SIGTERM: they log out, so they are
 * down in the directory at once and no later test finds them listed until a lease runs out; -9 if one
 * is still running 10 s later). Call at the top level of the file.
 */
export function useTestNetwork(
  options: {
    directoryEnv?: Record<string, string>
    /** The directory's listening address, asked in beforeAll (default 127.0.0.1). */
    directoryHost?: () => string
    logOutAfterEach?: boolean
  } = {},
) {
  let directory: DirectoryProcess | undefined
  let stateRoot = ''
  const running: Stoppable[] = []
  beforeAll(async () => {
    stateRoot = testStateRoot()
    directory = await startDirectoryProcess({
      env: options.directoryEnv ?? {},
      host: options.directoryHost?.(),
    })
  })
  afterEach(async () => {
    await Promise.all(
      running.splice(0).map(async (p) => {
        if (options.logOutAfterEach) {
          const stopped = p.stop('SIGTERM').then(() => true)
          const late = new Promise<false>((resolve) => setTimeout(() => resolve(false), 10_000).unref())
          if (await Promise.race([stopped, late])) return
        }
        await p.stop('SIGKILL')
      }),
    )
  })
  afterAll(async () => {
    await directory?.stop('SIGKILL')
  })
  const network = {
    get directoryUrl(): string {
      if (!directory) throw new Error('the test network starts in beforeAll')
      return directory.url
    },
    get stateRoot(): string {
      return stateRoot
    },
    /** Kills the directory with -9, for the rest of the file: the last test's business. */
    async stopDirectory() {
      await directory?.stop('SIGKILL')
    },
    /** Stopped with the test's peers. */
    track<T extends Stoppable>(process: T): T {
      running.push(process)
      return process
    },
    /** `peer start` as a real process in this network, stopped after the test. */
    async peer(name: string, peerOptions: PeerOptions = {}): Promise<PeerProcess> {
      return network.track(
        await startPeer({ name, directoryUrl: network.directoryUrl, stateRoot, ...peerOptions }),
      )
    },
  }
  return network
}
