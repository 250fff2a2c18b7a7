/**
 * `node:fs` helpers the file layers share: durable writes, directory fsync, error mapping.
 * @internal
 */
import { Effect } from "effect"
import * as fs from "node:fs/promises"

/** True for an ENOENT error. @internal */
export const isNotFound = (cause: unknown): boolean => (cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT"

/** Writes `bytes` to a new file and fsyncs it before closing. @internal */
export const writeFileDurably = async (path: string, bytes: Uint8Array): Promise<void> => {
  const handle = await fs.open(path, "wx")
  try {
    await handle.writeFile(bytes)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Fsyncs a directory so that entries created, renamed or removed in it survive a power loss.
 * Platforms that cannot open a directory for fsync (Windows) skip it. @internal
 */
export const fsyncDirectory = async (path: string): Promise<void> => {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(path, "r")
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException)?.code === "EISDIR" || (cause as NodeJS.ErrnoException)?.code === "EPERM") return
    throw cause
  }
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

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
