import { accessSync, constants, statSync } from 'node:fs'
import type { Client } from '@libsql/client'
import { StorageError } from './storage-errors.ts'

const GUARDED = new Set(['execute', 'batch', 'executeMultiple', 'transaction', 'migrate'])
const CHECK_EVERY_MS = 1000

/**
 * Node only: a libSQL file removed or replaced under a running directory would otherwise keep taking
 * writes into the deleted inode and lose them at the next start. So the file is checked (at most once a
 * second): missing means 503 until it is back; a different file at the path (a restored backup) is
 * opened afresh. A file made read-only (its mode, or a read-only mount) is opened afresh too: the open
 * handle would otherwise keep writing as if nothing had happened; reopened, reads go on and writes fail
 * (503) until it is writable again.
 */
export function guardDatabaseFile(path: string, open: () => Client): Client {
  let client = open()
  let inode = inodeOf(path)
  let writable = isWritable(path)
  let checkedAt = Date.now()
  const check = () => {
    const now = Date.now()
    if (now - checkedAt < CHECK_EVERY_MS && inode !== undefined) return
    checkedAt = now
    const current = inodeOf(path)
    if (current === undefined) {
      inode = undefined
      throw new StorageError(`the database file ${path} is missing`)
    }
    const nowWritable = isWritable(path)
    if (current !== inode || nowWritable !== writable) {
      client.close()
      client = open()
      inode = current
      writable = nowWritable
    }
  }
  return new Proxy({} as Client, {
    get(_target, property) {
      if (typeof property === 'string' && GUARDED.has(property)) {
        return (...args: unknown[]) => {
          check()
          // Refused here rather than left to the reopened connection: whether SQLite notices the file
          // went read-only under a process that already had it open was not dependable in tests.
          if (!writable && writes(property, args)) {
            throw new StorageError(`the database file ${path} is read-only`)
          }
          return (client[property as keyof Client] as (...a: unknown[]) => unknown).apply(client, args)
        }
      }
      const value = Reflect.get(client, property)
      return typeof value === 'function' ? value.bind(client) : value
    },
  })
}

const READ_SQL = /^\s*(SELECT|WITH|EXPLAIN)\b/i

/** Whether a client call may write: any statement that is not a plain read, a write batch or transaction. */
function writes(method: string, args: unknown[]): boolean {
  const sqlOf = (statement: unknown) =>
    typeof statement === 'string' ? statement : String((statement as { sql?: unknown })?.sql ?? '')
  switch (method) {
    case 'execute':
    case 'executeMultiple':
      return !READ_SQL.test(sqlOf(args[0]))
    case 'batch':
      return (
        args[1] === 'write' || (args[0] as unknown[]).some((statement) => !READ_SQL.test(sqlOf(statement)))
      )
    case 'transaction':
      return args[0] !== 'read'
    default:
      return true
  }
}

function isWritable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK)
    return true
  } catch {
    return false
  }
}

function inodeOf(path: string): number | undefined {
  try {
    return statSync(path).ino
  } catch {
    return undefined
  }
}
