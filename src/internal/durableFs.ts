/**
 * `node:fs` steps of crash-safe writing, shared by the file layers and the projection artifact:
 * new files written and fsynced, directories fsynced, directories created with their parents fsynced.
 * @internal
 */
import * as fs from "node:fs/promises"
import * as NodePath from "node:path"

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

/** Creates `directory` if missing, fsyncing the parent of every directory it created. @internal */
export const makeDirectoryDurably = async (directory: string): Promise<void> => {
  const created = await fs.mkdir(directory, { recursive: true })
  if (created === undefined) return
  for (let dir = directory; dir !== NodePath.dirname(created); dir = NodePath.dirname(dir)) {
    await fsyncDirectory(NodePath.dirname(dir))
  }
}
