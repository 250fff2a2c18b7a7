/**
 * The file operations the file Journal performs, as one small interface. Production uses `node:fs`
 * (`nodeFileIo`); the crash tests substitute a simulated file system that can fail or lose any
 * operation, so every path the journal takes through the file system is the one under test.
 *
 * Descriptor-based and synchronous, with one exception: writes to the page cache take microseconds,
 * and `fdatasync` lets a flush to the device run on the thread pool, so that the event loop keeps
 * serving appends that will share the next flush (group commit).
 * @internal
 */
import * as fs from "node:fs"

/** The subset of `node:fs` the file Journal uses. Errors are thrown (sync) or passed to the callback. @internal */
export interface FileIo {
  /** Opens a file or directory; `flags` as in `node:fs` ("r", "r+", "wx"). */
  readonly openSync: (path: string, flags: string) => number
  readonly closeSync: (fd: number) => void
  /** Reads up to `length` bytes at `position`; returns the count read (0 at end of file). */
  readonly readSync: (fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => number
  /** Writes up to `length` bytes at `position`; returns the count written. */
  readonly writeSync: (fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => number
  readonly fstatSync: (fd: number) => { readonly size: number }
  readonly ftruncateSync: (fd: number, length: number) => void
  /** Flushes a file's data and metadata, or a directory's entries, to the device. */
  readonly fsyncSync: (fd: number) => void
  /** Flushes a file's data to the device without blocking the caller. */
  readonly fdatasync: (fd: number, callback: (error: Error | null) => void) => void
  /** Flushes a file's data to the device, blocking the caller until it is there. */
  readonly fdatasyncSync: (fd: number) => void
  readonly renameSync: (from: string, to: string) => void
  /**
   * Gives the file `existing` a second name `newPath` (a hard link), atomically; throws EEXIST if
   * `newPath` exists, so it creates a name exclusively with content written beforehand.
   */
  readonly linkSync: (existing: string, newPath: string) => void
  readonly unlinkSync: (path: string) => void
  /** The names in a directory (not paths). */
  readonly readdirSync: (path: string) => Array<string>
  readonly mkdirSync: (path: string, options: { readonly recursive: true }) => unknown
}

/** `node:fs`, the same on Bun, Deno and Node. @internal */
export const nodeFileIo: FileIo = {
  openSync: (path, flags) => fs.openSync(path, flags),
  closeSync: (fd) => fs.closeSync(fd),
  readSync: (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  writeSync: (fd, buffer, offset, length, position) => fs.writeSync(fd, buffer, offset, length, position),
  fstatSync: (fd) => fs.fstatSync(fd),
  ftruncateSync: (fd, length) => fs.ftruncateSync(fd, length),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  fdatasync: (fd, callback) => fs.fdatasync(fd, callback),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  renameSync: (from, to) => fs.renameSync(from, to),
  linkSync: (existing, newPath) => fs.linkSync(existing, newPath),
  unlinkSync: (path) => fs.unlinkSync(path),
  readdirSync: (path) => fs.readdirSync(path),
  mkdirSync: (path, options) => fs.mkdirSync(path, options)
}

/** Writes all of `bytes` at `position`, looping over short writes. @internal */
export const writeAll = (io: FileIo, fd: number, bytes: Uint8Array, position: number): void => {
  let done = 0
  while (done < bytes.length) {
    const written = io.writeSync(fd, bytes, done, bytes.length - done, position + done)
    if (written <= 0) throw new Error(`short write: ${done} of ${bytes.length} bytes written`)
    done += written
  }
}

/** Reads exactly `length` bytes at `position` (fewer only at end of file); returns the count read. @internal */
export const readFully = (io: FileIo, fd: number, buffer: Uint8Array, length: number, position: number): number => {
  let done = 0
  while (done < length) {
    const read = io.readSync(fd, buffer, done, length - done, position + done)
    if (read <= 0) break
    done += read
  }
  return done
}

/** Removes the file at `path` if there is one; returns whether it did. @internal */
export const unlinkIfPresent = (io: FileIo, path: string): boolean => {
  try {
    io.unlinkSync(path)
    return true
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException)?.code === "ENOENT") return false
    throw cause
  }
}

/** Reads a whole file. @internal */
export const readWholeFile = (io: FileIo, path: string): Uint8Array => {
  const fd = io.openSync(path, "r")
  try {
    const buffer = new Uint8Array(io.fstatSync(fd).size)
    return buffer.subarray(0, readFully(io, fd, buffer, buffer.length, 0))
  } finally {
    io.closeSync(fd)
  }
}

/**
 * Fsyncs a directory so entries created, renamed or removed in it survive a power loss.
 * Platforms that cannot open a directory (Windows) skip it. @internal
 */
export const fsyncDirectorySync = (io: FileIo, path: string): void => {
  let fd: number
  try {
    fd = io.openSync(path, "r")
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException)?.code
    if (code === "EISDIR" || code === "EPERM") return
    throw cause
  }
  try {
    io.fsyncSync(fd)
  } finally {
    io.closeSync(fd)
  }
}

/**
 * Replaces the file at `path` atomically and durably: writes a temp file beside it, fsyncs it,
 * renames it over `path` and fsyncs the directory. A crash leaves the old file or the new one. @internal
 */
export const replaceFileDurably = (io: FileIo, directory: string, name: string, bytes: Uint8Array): void => {
  const temp = `${directory}/${name}.tmp`
  const fd = io.openSync(temp, "w")
  try {
    writeAll(io, fd, bytes, 0)
    io.fsyncSync(fd)
  } finally {
    io.closeSync(fd)
  }
  io.renameSync(temp, `${directory}/${name}`)
  fsyncDirectorySync(io, directory)
}
