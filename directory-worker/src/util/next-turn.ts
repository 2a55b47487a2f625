/**
 * Runs `task` on the next turn of the event loop, after the I/O of this one: work that requests of
 * one turn can share (a commit, a read) waits for all of them. Workers may lack setImmediate.
 */
export const nextTurn: (task: () => void) => void =
  globalThis.setImmediate ?? ((task: () => void) => setTimeout(task, 0))
