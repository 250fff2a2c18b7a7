/**
 * One writer per journal directory: a `LOCK` file holding the owner's pid and host, created
 * exclusively. A lock whose process is gone (killed, crashed) on this host is stale and taken
 * over; one held by a live process, or by another open journal in this process, is refused.
 * @internal
 */
import * as os from "node:os"
import { type FileIo, readWholeFile, writeAll } from "./fileIo.ts"

/** Directories locked by this process, so that a second layer in the same process is refused too. */
const heldHere: Set<string> = ((globalThis as { __annalsDirectoryLocks?: Set<string> }).__annalsDirectoryLocks ??= new Set())

interface Owner {
  readonly pid: number
  readonly host: string
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (cause) {
    return (cause as NodeJS.ErrnoException)?.code === "EPERM"
  }
}

const readOwner = (io: FileIo, path: string): Owner | undefined => {
  try {
    const owner = JSON.parse(new TextDecoder().decode(readWholeFile(io, path))) as Owner
    return typeof owner.pid === "number" && typeof owner.host === "string" ? owner : undefined
  } catch {
    return undefined
  }
}

/**
 * Takes the lock on `directory`; returns the release function, or throws an Error whose message
 * says who holds it. @internal
 */
export const lockDirectory = (io: FileIo, directory: string): () => void => {
  const path = `${directory}/LOCK`
  if (heldHere.has(directory)) {
    throw new Error(`${directory} is already open in this process (lock file ${path}); close the other journal first`)
  }
  const me: Owner = { pid: process.pid, host: os.hostname() }
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number
    try {
      fd = io.openSync(path, "wx")
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException)?.code !== "EEXIST") throw cause
      const owner = readOwner(io, path)
      // An unreadable lock is one a crash left half-written; a dead pid on this host, or our own
      // pid (a previous run of this process that never released), is stale.
      const stale = owner === undefined ||
        (owner.host === me.host && (owner.pid === me.pid || !isAlive(owner.pid)))
      if (!stale) {
        throw new Error(
          `${directory} is locked by process ${owner.pid} on host ${owner.host} (lock file ${path}); ` +
            "only one writer may open a journal directory"
        )
      }
      io.unlinkSync(path)
      continue
    }
    try {
      writeAll(io, fd, new TextEncoder().encode(JSON.stringify(me)), 0)
    } finally {
      io.closeSync(fd)
    }
    heldHere.add(directory)
    return () => {
      heldHere.delete(directory)
      try {
        io.unlinkSync(path)
      } catch {
        // Already gone: nothing to release.
      }
    }
  }
  throw new Error(`could not take the lock file ${path}: other processes keep replacing it`)
}
