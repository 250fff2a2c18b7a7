/**
 * An in-memory file system implementing `FileIo`, with power-loss semantics and seeded fault
 * injection, for crash tests of the file layers. Everything is deterministic: the only source of
 * randomness is the seeded `random` a test passes in.
 *
 * ## The model
 *
 * - **Files** are inodes with a *volatile* content (what reads and `fstat` see now) and a *durable*
 *   content (what survives a power loss). Every change to a file's content (a write, a truncation,
 *   the truncation of `open(…, "w")`) is applied to the volatile content at once and queued as a
 *   *pending* operation. `fsyncSync`/`fdatasyncSync`/`fdatasync` of a file apply that file's pending
 *   operations, in order, to its durable content (all flush data and size alike). `fdatasync`
 *   flushes the operations pending when it is called and reports on a later microtask, as the
 *   thread pool would (or after `fdatasyncDelayMs`, a slow device).
 * - **Directory entries** (a name → inode link) are volatile too: creating, renaming over,
 *   hard-linking (`linkSync`: a second name for the same inode) and unlinking a file change the
 *   volatile namespace at once and queue a pending entry operation on the parent directory. Only
 *   `fsyncSync` of a descriptor opened on the directory (`openSync(dir, "r")`) makes them durable.
 *   A rename inside one directory is one atomic operation; across two directories it is two (link
 *   the new name, then unlink the old one), each durable with its own directory. A file whose
 *   content is durable but whose name is not is gone after a crash.
 * - **Directories** themselves are created durably by `mkdirSync` (a simplification: the layers
 *   create their directory once, before any file). Files are opened with "r", "r+", "w", "w+",
 *   "wx" or "wx+"; a directory only with "r". An unlinked file stays usable through open descriptors.
 * - **Power loss**: `crash(random)` returns a *new* file system holding the disk after a power
 *   loss: every durable content and entry, plus a prefix (chosen by `random`) of the pending
 *   operations in the order they were issued, the last one possibly torn (a write of which only a
 *   leading part reached the disk). Disks and file systems may reorder unsynced writes more freely
 *   than this; the prefix is the usual "simple but realistic" choice and is what an ordered-mode
 *   journaling file system mostly gives. The new file system has no open descriptors; everything in
 *   it is durable.
 * - **Faults**, when a `FaultConfig` is set and `faultsEnabled` is true: each call of an operation
 *   named in `rates` may
 *   - *fail*: throw EIO (or pass it to the `fdatasync` callback) without any effect;
 *   - be *lost*: `writeSync` persists (in volatile state) only a leading part of its bytes, then
 *     throws EIO; `fsyncSync`/`fdatasyncSync`/`fdatasync` report EIO and *drop* the file's unsynced operations:
 *     they stay visible to reads but never reach the disk, not even through a later successful
 *     fsync (Linux "fsyncgate": the failed pages are marked clean); for a directory the pending
 *     entries are dropped likewise; `renameSync`, `linkSync`, `unlinkSync` and `ftruncateSync` take
 *     effect in volatile state (pending, as usual) and then throw EIO;
 *   - be *short* (`writeSync`, `readSync` only): transfer fewer bytes than asked, without error.
 *   `closeSync` never faults in a way that keeps the descriptor open. Every fault is logged in
 *   `injected`, so a test can see what fired.
 *
 * Not modelled: permissions, symbolic links, hard links to directories, link counts, sparse-file
 * holes (gaps read as zeros), page or sector granularity of flushes and tears (a lost flush drops
 * exactly the bytes it covered, so a hole followed by later data is more frequent than on a real
 * disk, where a page rewritten after the error carries its older bytes along), reordering of
 * unsynced writes, metadata (times, modes), `ENOSPC`, and directories that vanish in a crash.
 */
import type { FileIo } from "../../src/file/internal/fileIo.ts"

/** The operations faults can be injected into. */
export type FaultOp =
  | "open"
  | "close"
  | "read"
  | "write"
  | "fstat"
  | "truncate"
  | "fsync"
  | "fdatasync"
  | "rename"
  | "link"
  | "unlink"
  | "readdir"
  | "mkdir"

/** Per-call probabilities of each fault kind (checked in this order: fail, lose, short). */
export interface FaultRates {
  readonly fail?: number | undefined
  readonly lose?: number | undefined
  readonly short?: number | undefined
}

/** Which faults to inject, drawn from a seeded `random` (a `() => [0, 1)`, e.g. `prng(seed)`). */
export interface FaultConfig {
  readonly random: () => number
  readonly rates: Partial<Record<FaultOp, FaultRates>>
}

/** One injected fault, for assertions and failure messages. */
export interface InjectedFault {
  readonly op: FaultOp
  readonly kind: "fail" | "lose" | "short"
  readonly path: string
}

/** An error shaped like the ones `node:fs` throws: `code`, `errno`, `syscall`, `path`. */
export class SimulatedFsError extends Error {
  readonly code: string
  readonly errno: number
  readonly syscall: string
  readonly path: string | undefined
  constructor(code: keyof typeof ERRNO, syscall: string, path?: string) {
    super(`${code}: ${ERRNO[code][1]}, ${syscall}${path === undefined ? "" : ` '${path}'`}`)
    this.name = "Error"
    this.code = code
    this.errno = -ERRNO[code][0]
    this.syscall = syscall
    this.path = path
  }
}

const ERRNO = {
  EPERM: [1, "operation not permitted"],
  ENOENT: [2, "no such file or directory"],
  EIO: [5, "i/o error"],
  EBADF: [9, "bad file descriptor"],
  EEXIST: [17, "file already exists"],
  ENOTDIR: [20, "not a directory"],
  EISDIR: [21, "illegal operation on a directory"],
  EINVAL: [22, "invalid argument"],
  ENOTEMPTY: [39, "directory not empty"]
} as const

interface Inode {
  readonly id: number
  /** What reads see now. */
  data: Uint8Array
  /** What survives a power loss. */
  durable: Uint8Array
}

type DataOp =
  | { readonly kind: "write"; readonly inode: Inode; readonly position: number; readonly bytes: Uint8Array }
  | { readonly kind: "truncate"; readonly inode: Inode; readonly length: number }

type EntryOp =
  | { readonly kind: "link"; readonly dir: string; readonly path: string; readonly inode: Inode }
  | { readonly kind: "unlink"; readonly dir: string; readonly path: string }
  | { readonly kind: "rename"; readonly dir: string; readonly from: string; readonly to: string; readonly inode: Inode }

type PendingOp = DataOp | EntryOp

interface Descriptor {
  readonly path: string
  readonly inode: Inode | undefined
  /** Set for a descriptor opened on a directory. */
  readonly directory: string | undefined
  readonly readable: boolean
  readonly writable: boolean
}

const FLAGS: Record<string, { readable: boolean; writable: boolean; create: boolean; exclusive: boolean; truncate: boolean }> = {
  r: { readable: true, writable: false, create: false, exclusive: false, truncate: false },
  "r+": { readable: true, writable: true, create: false, exclusive: false, truncate: false },
  w: { readable: false, writable: true, create: true, exclusive: false, truncate: true },
  "w+": { readable: true, writable: true, create: true, exclusive: false, truncate: true },
  wx: { readable: false, writable: true, create: true, exclusive: true, truncate: true },
  "wx+": { readable: true, writable: true, create: true, exclusive: true, truncate: true }
}

/** `a/b//c/./d/` → `a/b/c/d`; keeps a leading `/`. */
export const normalizePath = (path: string): string => {
  const absolute = path.startsWith("/")
  const parts: Array<string> = []
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue
    if (part === "..") parts.pop()
    else parts.push(part)
  }
  const joined = parts.join("/")
  return absolute ? `/${joined}` : joined === "" ? "." : joined
}

const parentOf = (path: string): string => {
  const slash = path.lastIndexOf("/")
  if (slash < 0) return "."
  return slash === 0 ? "/" : path.slice(0, slash)
}

const baseName = (path: string): string => path.slice(path.lastIndexOf("/") + 1)

const isRoot = (path: string): boolean => path === "/" || path === "."

/** `data` with `bytes` written at `position` (zero-filled up to it). */
const writeInto = (data: Uint8Array, position: number, bytes: Uint8Array): Uint8Array => {
  const end = position + bytes.length
  const out = end > data.length ? new Uint8Array(end) : new Uint8Array(data)
  if (end > data.length) out.set(data)
  out.set(bytes, position)
  return out
}

const truncateTo = (data: Uint8Array, length: number): Uint8Array => {
  if (length <= data.length) return data.slice(0, length)
  const out = new Uint8Array(length)
  out.set(data)
  return out
}

const applyData = (data: Uint8Array, op: DataOp): Uint8Array =>
  op.kind === "write" ? writeInto(data, op.position, op.bytes) : truncateTo(data, op.length)

const applyEntry = (entries: Map<string, Inode>, op: EntryOp): void => {
  switch (op.kind) {
    case "link":
      entries.set(op.path, op.inode)
      return
    case "unlink":
      entries.delete(op.path)
      return
    case "rename":
      entries.delete(op.from)
      entries.set(op.to, op.inode)
      return
  }
}

/** Options for a new, empty simulated file system. */
export interface SimulatedFsOptions {
  readonly faults?: FaultConfig | undefined
  /**
   * Milliseconds (of wall-clock time, a `setTimeout`) an `fdatasync` on the thread pool takes before
   * it completes and reports (default: the next microtask). A slow device, so that appends stay in
   * flight while other fibers read. `fdatasyncSync` and `fsyncSync` are not slowed (they would only
   * block the thread).
   */
  readonly fdatasyncDelayMs?: number | undefined
}

/** Options of `crash`. */
export interface CrashOptions {
  /** Probability that a pending write at the cut is torn rather than left out whole (default 0.5). */
  readonly tear?: number | undefined
}

/**
 * The simulated file system. Its `FileIo` members are bound arrow functions, so it can be passed
 * as a `FileIo` and its members used detached.
 */
export class SimulatedFs implements FileIo {
  /** The fault configuration; `undefined` injects none. */
  faults: FaultConfig | undefined
  /** Faults fire only while this is true (and `faults` is set). */
  faultsEnabled = true
  /** Every fault injected so far, in order. */
  readonly injected: Array<InjectedFault> = []

  readonly #directories = new Set<string>()
  /** The volatile namespace: path → inode. */
  readonly #entries = new Map<string, Inode>()
  /** The durable namespace. */
  readonly #durableEntries = new Map<string, Inode>()
  readonly #pending: Array<PendingOp> = []
  readonly #descriptors = new Map<number, Descriptor>()
  #nextFd = 3
  #inFlight = 0
  #nextInode = 1

  readonly #fdatasyncDelayMs: number | undefined

  constructor(options?: SimulatedFsOptions) {
    this.faults = options?.faults
    this.#fdatasyncDelayMs = options?.fdatasyncDelayMs
  }

  // -------------------------------------------------------------------------------------------
  // Inspection and setup (no faults, no pending operations)

  /** The volatile content of a file, or undefined if there is none at `path`. */
  readonly contentOf = (path: string): Uint8Array | undefined => {
    const inode = this.#entries.get(normalizePath(path))
    return inode === undefined ? undefined : inode.data.slice()
  }

  /** The content `path` would have after a crash that keeps nothing pending (undefined if gone). */
  readonly durableContentOf = (path: string): Uint8Array | undefined => {
    const inode = this.#durableEntries.get(normalizePath(path))
    return inode === undefined ? undefined : inode.durable.slice()
  }

  /** The volatile paths of all files, sorted. */
  readonly files = (): Array<string> => Array.from(this.#entries.keys()).sort()

  /** How many operations are not yet durable. */
  get pendingCount(): number {
    return this.#pending.length
  }

  /** How many `fdatasync` calls have not reported yet. */
  get syncsInFlight(): number {
    return this.#inFlight
  }

  /** Resolves once every `fdatasync` called so far (and any started by their callbacks) has reported. */
  readonly idle = async (): Promise<void> => {
    while (this.#inFlight > 0) await new Promise<void>((resolve) => setTimeout(resolve, 0))
  }

  /** How many descriptors are open. */
  get openCount(): number {
    return this.#descriptors.size
  }

  /** Creates or replaces a file durably (content and entry), creating its directories. */
  readonly writeDurably = (path: string, bytes: Uint8Array): void => {
    const normalized = normalizePath(path)
    this.#mkdirs(parentOf(normalized))
    const inode = this.#newInode(bytes)
    inode.durable = bytes.slice()
    this.#entries.set(normalized, inode)
    this.#durableEntries.set(normalized, inode)
  }

  // -------------------------------------------------------------------------------------------
  // Power loss

  /**
   * The disk after a power loss, as a new file system: durable state plus, when `random` is given,
   * a prefix of the pending operations (of random length, the last write possibly torn). Without
   * `random` nothing pending survives. The new file system keeps this one's `faults` configuration
   * with `faultsEnabled` false, so the first reopen after a crash runs without faults unless the
   * test switches them back on.
   */
  readonly crash = (random?: () => number, options?: CrashOptions): SimulatedFs => {
    const durable = new Map<Inode, Uint8Array>()
    const contentOf = (inode: Inode) => durable.get(inode) ?? inode.durable
    const entries = new Map(this.#durableEntries)
    const pending = this.#pending
    const keep = random === undefined ? 0 : Math.floor(random() * (pending.length + 1))
    for (let i = 0; i < keep; i++) {
      const op = pending[i]!
      if (op.kind === "write" || op.kind === "truncate") durable.set(op.inode, applyData(contentOf(op.inode), op))
      else applyEntry(entries, op)
    }
    // The operation at the cut: a write may have reached the disk in part.
    const cut = pending[keep]
    if (random !== undefined && cut !== undefined && cut.kind === "write" && cut.bytes.length > 1) {
      if (random() < (options?.tear ?? 0.5)) {
        const part = 1 + Math.floor(random() * (cut.bytes.length - 1))
        durable.set(cut.inode, writeInto(contentOf(cut.inode), cut.position, cut.bytes.subarray(0, part)))
      }
    }
    const next = new SimulatedFs({ faults: this.faults })
    next.faultsEnabled = false
    for (const directory of this.#directories) next.#directories.add(directory)
    const copies = new Map<Inode, Inode>()
    for (const [path, inode] of entries) {
      let copy = copies.get(inode)
      if (copy === undefined) {
        copy = next.#newInode(contentOf(inode))
        copy.durable = copy.data.slice()
        copies.set(inode, copy)
      }
      next.#entries.set(path, copy)
      next.#durableEntries.set(path, copy)
    }
    return next
  }

  // -------------------------------------------------------------------------------------------
  // FileIo

  readonly openSync = (path: string, flags: string): number => {
    const normalized = normalizePath(path)
    this.#fault("open", normalized, "fail")
    const mode = FLAGS[flags]
    if (mode === undefined) throw new SimulatedFsError("EINVAL", "open", path)
    if (this.#isDirectory(normalized)) {
      if (mode.writable) throw new SimulatedFsError("EISDIR", "open", path)
      return this.#newFd({ path: normalized, inode: undefined, directory: normalized, readable: true, writable: false })
    }
    const parent = parentOf(normalized)
    if (!this.#isDirectory(parent)) {
      throw new SimulatedFsError(this.#entries.has(parent) ? "ENOTDIR" : "ENOENT", "open", path)
    }
    let inode = this.#entries.get(normalized)
    if (inode !== undefined) {
      if (mode.exclusive) throw new SimulatedFsError("EEXIST", "open", path)
      if (mode.truncate && inode.data.length > 0) this.#dataOp({ kind: "truncate", inode, length: 0 })
    } else {
      if (!mode.create) throw new SimulatedFsError("ENOENT", "open", path)
      inode = this.#newInode(new Uint8Array(0))
      this.#entryOp({ kind: "link", dir: parent, path: normalized, inode })
    }
    return this.#newFd({ path: normalized, inode, directory: undefined, readable: mode.readable, writable: mode.writable })
  }

  readonly closeSync = (fd: number): void => {
    const descriptor = this.#descriptor(fd, "close")
    this.#descriptors.delete(fd)
    // Like close(2): the descriptor is released even when the call reports an error.
    this.#fault("close", descriptor.path, "fail")
  }

  readonly readSync = (fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number => {
    const descriptor = this.#descriptor(fd, "read")
    if (descriptor.directory !== undefined) throw new SimulatedFsError("EISDIR", "read")
    if (!descriptor.readable) throw new SimulatedFsError("EBADF", "read")
    this.#checkRange(buffer, offset, length, position, "read")
    const kind = this.#fault("read", descriptor.path, "fail", "short")
    const data = descriptor.inode!.data
    let count = Math.max(0, Math.min(length, data.length - position))
    if (kind === "short" && count > 1) count = 1 + Math.floor(this.#random() * (count - 1))
    buffer.set(data.subarray(position, position + count), offset)
    return count
  }

  readonly writeSync = (fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number => {
    const descriptor = this.#descriptor(fd, "write")
    if (!descriptor.writable) throw new SimulatedFsError("EBADF", "write")
    this.#checkRange(buffer, offset, length, position, "write")
    const kind = this.#fault("write", descriptor.path, "fail", "lose", "short")
    const inode = descriptor.inode!
    let count = length
    if ((kind === "lose" || kind === "short") && length > 0) count = Math.floor(this.#random() * length)
    if (kind === "short" && count === 0) count = 1
    if (count > 0) {
      this.#dataOp({ kind: "write", inode, position, bytes: buffer.slice(offset, offset + count) })
    }
    if (kind === "lose") throw new SimulatedFsError("EIO", "write")
    return count
  }

  readonly fstatSync = (fd: number): { readonly size: number } => {
    const descriptor = this.#descriptor(fd, "fstat")
    this.#fault("fstat", descriptor.path, "fail")
    return { size: descriptor.inode === undefined ? 4096 : descriptor.inode.data.length }
  }

  readonly ftruncateSync = (fd: number, length: number): void => {
    const descriptor = this.#descriptor(fd, "ftruncate")
    if (descriptor.directory !== undefined || !descriptor.writable) throw new SimulatedFsError("EINVAL", "ftruncate")
    if (!Number.isInteger(length) || length < 0) throw new SimulatedFsError("EINVAL", "ftruncate")
    const kind = this.#fault("truncate", descriptor.path, "fail", "lose")
    this.#dataOp({ kind: "truncate", inode: descriptor.inode!, length })
    if (kind === "lose") throw new SimulatedFsError("EIO", "ftruncate")
  }

  readonly fsyncSync = (fd: number): void => this.#flushSync(fd, "fsync")

  readonly fdatasyncSync = (fd: number): void => this.#flushSync(fd, "fdatasync")

  readonly fdatasync = (fd: number, callback: (error: Error | null) => void): void => {
    let ops: Array<PendingOp> = []
    let error: Error | null = null
    try {
      const descriptor = this.#descriptor(fd, "fdatasync")
      const kind = this.#fault("fdatasync", descriptor.path, "fail", "lose")
      ops = this.#pendingOf(descriptor)
      if (kind === "lose") {
        this.#drop(ops)
        ops = []
        throw new SimulatedFsError("EIO", "fdatasync")
      }
    } catch (cause) {
      error = cause as Error
    }
    // The flush runs "on the thread pool": it completes, and reports, on a later microtask. It
    // flushes what was pending when it was called; writes issued meanwhile wait for the next one.
    this.#inFlight++
    const complete = () => {
      this.#inFlight--
      if (error === null) this.#commit(ops.filter((op) => this.#pending.includes(op)))
      callback(error)
    }
    if (this.#fdatasyncDelayMs === undefined) queueMicrotask(complete)
    else setTimeout(complete, this.#fdatasyncDelayMs)
  }

  readonly renameSync = (from: string, to: string): void => {
    const source = normalizePath(from)
    const target = normalizePath(to)
    const kind = this.#fault("rename", source, "fail", "lose")
    if (this.#isDirectory(source)) throw new SimulatedFsError("EISDIR", "rename", from)
    const inode = this.#entries.get(source)
    if (inode === undefined) throw new SimulatedFsError("ENOENT", "rename", from)
    if (this.#isDirectory(target)) throw new SimulatedFsError("EISDIR", "rename", to)
    if (!this.#isDirectory(parentOf(target))) throw new SimulatedFsError("ENOENT", "rename", to)
    if (source !== target) {
      const sourceDir = parentOf(source)
      const targetDir = parentOf(target)
      if (sourceDir === targetDir) {
        this.#entryOp({ kind: "rename", dir: sourceDir, from: source, to: target, inode })
      } else {
        this.#entryOp({ kind: "link", dir: targetDir, path: target, inode })
        this.#entryOp({ kind: "unlink", dir: sourceDir, path: source })
      }
    }
    if (kind === "lose") throw new SimulatedFsError("EIO", "rename", from)
  }

  readonly linkSync = (existing: string, newPath: string): void => {
    const source = normalizePath(existing)
    const target = normalizePath(newPath)
    const kind = this.#fault("link", source, "fail", "lose")
    if (this.#isDirectory(source)) throw new SimulatedFsError("EPERM", "link", existing)
    const inode = this.#entries.get(source)
    if (inode === undefined) throw new SimulatedFsError("ENOENT", "link", existing)
    if (!this.#isDirectory(parentOf(target))) throw new SimulatedFsError("ENOENT", "link", newPath)
    if (this.#isDirectory(target) || this.#entries.has(target)) throw new SimulatedFsError("EEXIST", "link", newPath)
    this.#entryOp({ kind: "link", dir: parentOf(target), path: target, inode })
    if (kind === "lose") throw new SimulatedFsError("EIO", "link", existing)
  }

  readonly unlinkSync = (path: string): void => {
    const normalized = normalizePath(path)
    const kind = this.#fault("unlink", normalized, "fail", "lose")
    if (this.#isDirectory(normalized)) throw new SimulatedFsError("EISDIR", "unlink", path)
    if (!this.#entries.has(normalized)) throw new SimulatedFsError("ENOENT", "unlink", path)
    this.#entryOp({ kind: "unlink", dir: parentOf(normalized), path: normalized })
    if (kind === "lose") throw new SimulatedFsError("EIO", "unlink", path)
  }

  readonly readdirSync = (path: string): Array<string> => {
    const normalized = normalizePath(path)
    this.#fault("readdir", normalized, "fail")
    if (!this.#isDirectory(normalized)) {
      throw new SimulatedFsError(this.#entries.has(normalized) ? "ENOTDIR" : "ENOENT", "scandir", path)
    }
    const names: Array<string> = []
    for (const entry of this.#entries.keys()) if (parentOf(entry) === normalized) names.push(baseName(entry))
    for (const directory of this.#directories) {
      if (directory !== normalized && parentOf(directory) === normalized) names.push(baseName(directory))
    }
    return names.sort()
  }

  readonly mkdirSync = (path: string, _options: { readonly recursive: true }): unknown => {
    const normalized = normalizePath(path)
    this.#fault("mkdir", normalized, "fail")
    return this.#mkdirs(normalized)
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  /** Decides whether this call faults; throws EIO for "fail", returns "lose"/"short" for the caller. */
  /** A synchronous flush of a descriptor's pending operations, faults as `op`. */
  #flushSync(fd: number, op: "fsync" | "fdatasync"): void {
    const descriptor = this.#descriptor(fd, op)
    const kind = this.#fault(op, descriptor.path, "fail", "lose")
    const ops = this.#pendingOf(descriptor)
    if (kind === "lose") {
      this.#drop(ops)
      throw new SimulatedFsError("EIO", op)
    }
    this.#commit(ops)
  }

  #fault(op: FaultOp, path: string, ...kinds: Array<"fail" | "lose" | "short">): "lose" | "short" | undefined {
    const faults = this.faults
    if (faults === undefined || !this.faultsEnabled) return undefined
    const rates = faults.rates[op]
    if (rates === undefined) return undefined
    for (const kind of kinds) {
      const rate = rates[kind] ?? 0
      if (rate > 0 && faults.random() < rate) {
        this.injected.push({ op, kind, path })
        if (kind === "fail") throw new SimulatedFsError("EIO", op === "truncate" ? "ftruncate" : op, path)
        return kind
      }
    }
    return undefined
  }

  #random(): number {
    return this.faults?.random() ?? 0.5
  }

  #isDirectory(path: string): boolean {
    return isRoot(path) || this.#directories.has(path)
  }

  #mkdirs(path: string): string | undefined {
    if (this.#isDirectory(path)) return undefined
    if (this.#entries.has(path)) throw new SimulatedFsError("EEXIST", "mkdir", path)
    const first = this.#mkdirs(parentOf(path))
    this.#directories.add(path)
    return first ?? path
  }

  #newInode(data: Uint8Array): Inode {
    return { id: this.#nextInode++, data: data.slice(), durable: new Uint8Array(0) }
  }

  #newFd(descriptor: Descriptor): number {
    const fd = this.#nextFd++
    this.#descriptors.set(fd, descriptor)
    return fd
  }

  #descriptor(fd: number, syscall: string): Descriptor {
    const descriptor = this.#descriptors.get(fd)
    if (descriptor === undefined) throw new SimulatedFsError("EBADF", syscall)
    return descriptor
  }

  #checkRange(buffer: Uint8Array, offset: number, length: number, position: number, syscall: string): void {
    const ok = [offset, length, position].every((n) => Number.isInteger(n) && n >= 0) && offset + length <= buffer.length
    if (!ok) throw new SimulatedFsError("EINVAL", syscall)
  }

  #dataOp(op: DataOp): void {
    op.inode.data = applyData(op.inode.data, op)
    this.#pending.push(op)
  }

  #entryOp(op: EntryOp): void {
    applyEntry(this.#entries, op)
    this.#pending.push(op)
  }

  /** The pending operations an fsync of `descriptor` flushes: its file's data, or its directory's entries. */
  #pendingOf(descriptor: Descriptor): Array<PendingOp> {
    return descriptor.directory !== undefined
      ? this.#pending.filter((op) => op.kind !== "write" && op.kind !== "truncate" && op.dir === descriptor.directory)
      : this.#pending.filter((op) => (op.kind === "write" || op.kind === "truncate") && op.inode === descriptor.inode)
  }

  /** Makes `ops` durable, in order, and removes them from the pending list. */
  #commit(ops: ReadonlyArray<PendingOp>): void {
    for (const op of ops) {
      if (op.kind === "write" || op.kind === "truncate") op.inode.durable = applyData(op.inode.durable, op)
      else applyEntry(this.#durableEntries, op)
    }
    this.#drop(ops)
  }

  /** Removes `ops` from the pending list: committed, or lost for good. */
  #drop(ops: ReadonlyArray<PendingOp>): void {
    if (ops.length === 0) return
    const gone = new Set(ops)
    let j = 0
    for (let i = 0; i < this.#pending.length; i++) {
      const op = this.#pending[i]!
      if (!gone.has(op)) this.#pending[j++] = op
    }
    this.#pending.length = j
  }
}
