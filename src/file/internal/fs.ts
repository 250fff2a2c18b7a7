/**
 * `node:fs` helpers the file layers share: durable writes and directory fsync (from
 * `internal/durableFs.ts`, which the projection artifact shares too), removal, error mapping.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs/promises"

export { fsyncDirectory, isNotFound, writeFileDurably } from "../../internal/durableFs.ts"

/** Removes a file, ignoring a missing one. @internal */
export const removeQuietly = async (path: string): Promise<void> => {
  await fs.rm(path, { force: true })
}

/**
 * Runs a file operation, mapping a failure to the layer's error with a message that names the
 * operation (`what`, e.g. "read /data/x") and the OS error. @internal
 */
export const attempt = <A, E>(
  what: string,
  run: () => Promise<A>,
  error: (message: string, cause: unknown) => E
): Effect.Effect<A, E> =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => error(`could not ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause)
  })
