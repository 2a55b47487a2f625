/** Any failure of the database itself (unreachable, refused, read-only, corrupt): answered as 503. */
export class StorageError extends Error {
  override readonly cause: unknown
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause))
    this.name = 'StorageError'
    this.cause = cause
  }
}

const WRAPPED = [
  'execute',
  'batch',
  'executeMultiple',
  'transaction',
  'commit',
  'rollback',
  'migrate',
] as const

/**
 * The client (or a transaction of it) with every failure turned into a StorageError. Drivers fail in
 * their own ways (LibsqlError codes, a bare fetch "Network connection lost" on Workers); handlers and
 * the error mapper then need to know only one type.
 */
export function withStorageErrors<T extends object>(target: T): T {
  return new Proxy(target, {
    get(object, property) {
      // The object itself as receiver: drivers keep state in #private fields a proxy cannot reach.
      const value = Reflect.get(object, property)
      if (typeof value !== 'function' || !(WRAPPED as readonly (string | symbol)[]).includes(property)) {
        return typeof value === 'function' ? value.bind(object) : value
      }
      return async (...args: unknown[]) => {
        try {
          const result = await value.apply(object, args)
          // transaction() hands back a Transaction, whose calls fail the same ways.
          return property === 'transaction' ? withStorageErrors(result as object) : result
        } catch (err) {
          throw err instanceof StorageError ? err : new StorageError(err)
        }
      }
    },
  })
}
