/**
 * One writer per journal directory: a `LOCK` file naming its owner, `{"pid", "host", "thread",
 * "nonce"}`, with a fresh random nonce per acquisition. A lock whose process is gone (killed,
 * crashed) on this host is stale and taken over; one held by a live process, or by another open
 * journal in this process (another thread, or this one through another path to the directory), is
 * refused.
 *
 * **Complete when visible.** No file of the lock is written in place: the owner's record goes to
 * `LOCK.<nonce>.tmp` and is then hard-linked under its final name. link(2) is atomic and fails with
 * EEXIST when the name exists, so it is the exclusive create, and no reader sees a `LOCK` that is
 * still empty and takes it for a crash's leftover. (After a power loss a `LOCK` may be empty: the
 * lock is not fsynced, as no process holds it across a reboot.)
 *
 * **Removed only by its owner, or under a takeover marker.** Every file of the lock has an
 * identity K: the nonce it holds, or for a file without one (an older version's `LOCK`, damage) a
 * hash of its bytes. It is removed only by its live owner, or — once its owner cannot hold it any
 * more: dead on this host, this process and thread without this thread holding that nonce (a
 * previous process given the same pid, as in a container restarted), or not named at all — by the
 * process that created the marker `LOCK.takeover-K` (exclusively, by link), after re-reading the
 * file and finding K still there. Nothing else removes it and nothing creates K again (nonces are fresh), so between that
 * re-read and the unlink the name still holds the same file: of two processes that read the same
 * stale `LOCK`, the later one can no longer remove the fresh `LOCK` the earlier one put in its
 * place. The marker's creator removes it when done, before linking its own `LOCK`: holding the
 * marker longer would give it no precedence over a process that finds no `LOCK` at all. Whoever
 * links `LOCK` first holds the lock; the others read its owner and are refused.
 *
 * A marker is itself a file of the lock, with its creator's identity. One whose creator lives
 * makes the others wait, up to `TAKEOVER_WAIT_MS`; one left by a process that died mid-takeover is
 * removed by the same rule, under `LOCK.takeover-<its creator's nonce>` (and so on, should that one's
 * creator have died too). Once the lock is taken, markers of dead processes that no takeover will
 * meet again (their `LOCK` is gone) are removed the same way. Temp files of dead processes are
 * removed by the journal's recovery, which deletes every `*.tmp` once the lock is taken: a live
 * racer whose temp file it deletes sees its link fail with ENOENT and writes the file again (it
 * never holds the lock without its own `LOCK` in place), and a temp file its racer removed between
 * the recovery's listing and its unlink is no error there.
 *
 * Limits: liveness is `kill(pid, 0)` on this host; a lock naming another host is never taken over,
 * and after a reboot a stale lock whose pid now belongs to another process is refused until
 * removed by hand. A lock of a worker thread that ended without releasing it is refused to the
 * process's other threads until the process exits. Every process opening the directory must run
 * this version: an older one takes over stale locks without markers.
 * @internal
 */
import { createHash, randomUUID } from "node:crypto"
import * as os from "node:os"
import { threadId } from "node:worker_threads"
import { type FileIo, readWholeFile, unlinkIfPresent, writeAll } from "./fileIo.ts"

/** Directories locked by this thread, so that a second layer in the same thread is refused too. */
const heldHere: Set<string> = ((globalThis as { __annalsDirectoryLocks?: Set<string> }).__annalsDirectoryLocks ??= new Set())

/** The nonces of the locks this thread holds: one reached again by another path is still ours. */
const heldNonces: Set<string> = ((globalThis as { __annalsLockNonces?: Set<string> }).__annalsLockNonces ??= new Set())

/** How long to wait for a live process to finish taking over a stale lock before giving up. */
const TAKEOVER_WAIT_MS = 2000

/** How deeply markers of dead processes may guard markers of dead processes before giving up. */
const MAX_MARKER_DEPTH = 8

const MARKER_PREFIX = "LOCK.takeover-"

const NONCE = /^[0-9a-f-]{36}$/

interface Owner {
  readonly pid: number
  readonly host: string
  /** The worker thread (0: the main thread; files of older versions name none). */
  readonly thread: number
}

/** What a file of the lock holds: its identity (nonce, or hash of its bytes) and its owner if named. */
interface Holder {
  readonly id: string
  readonly owner: Owner | undefined
}

/** A marker whose live creator is taking over the file it guards. */
interface Busy {
  readonly marker: string
  readonly owner: Owner
}

const parseHolder = (bytes: Uint8Array): Holder => {
  let value: { pid?: unknown; host?: unknown; thread?: unknown; nonce?: unknown } | undefined
  try {
    value = JSON.parse(new TextDecoder().decode(bytes)) ?? undefined
  } catch {
    value = undefined
  }
  const { pid, host, thread, nonce } = value ?? {}
  return {
    id: typeof nonce === "string" && NONCE.test(nonce)
      ? nonce
      : `sha256-${createHash("sha256").update(bytes).digest("hex").slice(0, 32)}`,
    owner: typeof pid === "number" && Number.isSafeInteger(pid) && pid > 0 && typeof host === "string"
      ? { pid, host, thread: typeof thread === "number" ? thread : 0 }
      : undefined
  }
}

/** The holder of the lock file at `path`, or undefined if there is no such file. */
const readHolder = (io: FileIo, path: string): Holder | undefined => {
  let bytes: Uint8Array
  try {
    bytes = readWholeFile(io, path)
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException)?.code === "ENOENT") return undefined
    throw cause
  }
  return parseHolder(bytes)
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (cause) {
    return (cause as NodeJS.ErrnoException)?.code === "EPERM"
  }
}

/** Blocks the thread for `ms` (the lock is taken synchronously; waiting is rare and short). */
const pause = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/**
 * Takes the lock on `directory`; returns the release function, or throws an Error whose message
 * names the directory, the lock file and who holds it. @internal
 */
export const lockDirectory = (io: FileIo, directory: string): () => void => {
  const lockPath = `${directory}/LOCK`
  if (heldHere.has(directory)) {
    throw new Error(`${directory} is already open in this process (lock file ${lockPath}); close the other store first`)
  }
  const host = os.hostname()
  const nonce = randomUUID()
  const temp = `${directory}/LOCK.${nonce}.tmp`
  const record = new TextEncoder().encode(JSON.stringify({ pid: process.pid, host, thread: threadId, nonce }))

  const writeTemp = (): void => {
    const fd = io.openSync(temp, "wx")
    try {
      writeAll(io, fd, record, 0)
    } finally {
      io.closeSync(fd)
    }
  }

  /** Links our record as `name` in the directory; false if the name exists. */
  const link = (name: string): boolean => {
    for (let rewritten = false;; rewritten = true) {
      try {
        io.linkSync(temp, `${directory}/${name}`)
        return true
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException)?.code
        if (code === "EEXIST") return false
        // The lock holder's recovery removed our temp file: write it again, once.
        if (code !== "ENOENT" || rewritten) throw cause
        writeTemp()
      }
    }
  }

  /**
   * Whether the writer of a file may still need it: another host's process, a live process, another
   * thread of this one (it cannot be asked), or this thread holding it (reached by another path).
   * A file naming this process and thread that this thread does not hold is a previous process's that
   * had the same pid.
   */
  const mayHold = (holder: Holder | undefined): holder is Holder & { readonly owner: Owner } => {
    const owner = holder?.owner
    if (owner === undefined) return false
    if (owner.host !== host) return true
    if (owner.pid !== process.pid) return isAlive(owner.pid)
    return owner.thread !== threadId || heldNonces.has(holder!.id)
  }

  /**
   * Removes the file `name` with identity `id`, whose owner cannot hold it any more, under the
   * marker of `id` (see the module comment), first removing a marker of a dead process in the way.
   * Returns the marker's creator if a live process is at it; undefined once done, or once the file
   * turns out changed or gone, or the marker keeps changing hands (the caller reads again).
   */
  const removeAbandoned = (name: string, id: string, depth: number): Busy | undefined => {
    const marker = `${MARKER_PREFIX}${id}`
    for (let round = 0; round < 3; round++) {
      if (link(marker)) {
        try {
          if (readHolder(io, `${directory}/${name}`)?.id === id) io.unlinkSync(`${directory}/${name}`)
        } finally {
          io.unlinkSync(`${directory}/${marker}`)
        }
        return undefined
      }
      const taker = readHolder(io, `${directory}/${marker}`)
      if (taker === undefined) continue
      if (mayHold(taker)) return { marker, owner: taker.owner }
      if (depth === MAX_MARKER_DEPTH) {
        throw new Error(
          `could not take over the stale lock file ${lockPath}: markers of dead processes nest deeper than ` +
            `${MAX_MARKER_DEPTH} (${directory}/${marker}); remove the ${MARKER_PREFIX}* files`
        )
      }
      const busy = removeAbandoned(marker, taker.id, depth + 1)
      if (busy !== undefined) return busy
    }
    return undefined
  }

  const acquire = (): void => {
    const deadline = Date.now() + TAKEOVER_WAIT_MS
    let busy: Busy | undefined
    for (let wait = 1; !link("LOCK"); wait = Math.min(2 * wait, 50)) {
      const holder = readHolder(io, lockPath)
      if (mayHold(holder)) {
        if (holder.owner.pid === process.pid) {
          throw new Error(
            `${directory} is already open in this process (${holder.owner.thread === threadId ? "by another path to it" : `in thread ${holder.owner.thread}`}; ` +
              `lock file ${lockPath}); close the other store first`
          )
        }
        throw new Error(
          `${directory} is locked by process ${holder.owner.pid} on host ${holder.owner.host} (lock file ${lockPath}); ` +
            "only one process at a time may open the directory"
        )
      }
      if (Date.now() > deadline) {
        throw new Error(
          busy === undefined
            ? `could not take the stale lock file ${lockPath}: other processes keep replacing it`
            : `could not take over the stale lock file ${lockPath}: process ${busy.owner.pid} on host ` +
              `${busy.owner.host} has been taking it over for ${TAKEOVER_WAIT_MS} ms (marker ${directory}/${busy.marker}); ` +
              "try again"
        )
      }
      // No holder: it was released meanwhile; try again at once.
      busy = holder === undefined ? undefined : removeAbandoned("LOCK", holder.id, 0)
      if (busy !== undefined) pause(wait)
    }
  }

  /** Removes markers of dead processes: with the lock ours, what they guarded is gone or abandoned. */
  const removeLeftoverMarkers = (): void => {
    for (const name of io.readdirSync(directory)) {
      if (!name.startsWith(MARKER_PREFIX)) continue
      const marker = readHolder(io, `${directory}/${name}`)
      if (marker !== undefined && !mayHold(marker)) removeAbandoned(name, marker.id, 0)
    }
  }

  const release = (): void => {
    heldHere.delete(directory)
    heldNonces.delete(nonce)
    try {
      if (readHolder(io, lockPath)?.id === nonce) io.unlinkSync(lockPath)
    } catch {
      // Unreadable or not removable: it names our pid, so it is stale once this process is gone.
    }
  }

  try {
    writeTemp()
    acquire()
  } catch (cause) {
    unlinkIfPresent(io, temp)
    throw cause
  }
  heldHere.add(directory)
  heldNonces.add(nonce)
  try {
    removeLeftoverMarkers()
    unlinkIfPresent(io, temp)
  } catch (cause) {
    release()
    throw cause
  }
  return release
}
