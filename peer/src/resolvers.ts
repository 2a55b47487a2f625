/** Promise.withResolvers, which the project's TypeScript lib (ES2023) does not declare yet. */
export function resolvers<T>() {
  let resolve: (value: T) => void = () => {}
  let reject: (err: unknown) => void = () => {}
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}
