/**
 * The file CursorStore's `EntryStore`: one file per subscription name (`cursorFormat.ts`) in a
 * directory this process holds the lock of. Every entry is read at open into a cache that reads are
 * served from. An update of a name holds that name's semaphore (updates of other names run
 * alongside), writes the new entry to a temporary file, fsyncs it, renames it over the old one and
 * fsyncs the directory — all on the thread pool — and only then changes the cache; a failure leaves
 * the cache as it was.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as RcMap from "effect/RcMap"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as SecureRandom from "effect/crypto/SecureRandom"
import * as fs from "node:fs/promises"
import * as NodePath from "node:path"
import { type CursorEntry, CursorStoreError, type EntryStore } from "../../CursorStore.ts"
import { makeDirectoryDurably } from "../../internal/durableFs.ts"
import { lockDirectory } from "./directoryLock.ts"
import { message } from "./errors.ts"
import { nodeFileIo } from "./fileIo.ts"
import { attempt, fsyncDirectory, isNotFound, removeQuietly, writeFileDurably } from "./fs.ts"
import { cursorFileName, decodeCursorFile, encodeCursorFile, isCursorFileName } from "./cursorFormat.ts"

const TEMP_SUFFIX = ".tmp"

/** The entry in the file `file` of `directory` (`undefined` if it is gone); throws an Error naming a file that cannot be read or is damaged. */
const readEntryFile = async (directory: string, file: string): Promise<{ readonly name: string; readonly entry: CursorEntry } | undefined> => {
  const path = NodePath.join(directory, file)
  let bytes: Uint8Array
  try {
    bytes = new Uint8Array(await fs.readFile(path))
  } catch (cause) {
    if (isNotFound(cause)) return undefined
    throw new Error(`could not read ${path}: ${message(cause)}`)
  }
  const decoded = decodeCursorFile(file, bytes)
  if ("problem" in decoded) throw new Error(`${path} is damaged: ${decoded.problem}; nothing was changed (restore or remove the file)`)
  return decoded
}

/**
 * Reads every entry file, and with `clean` first removes the temporary files a crash left (the lock
 * is ours: no live writer uses them); throws an Error naming the file that cannot be read or is damaged.
 */
const load = async (directory: string, clean: boolean): Promise<Map<string, CursorEntry>> => {
  const cache = new Map<string, CursorEntry>()
  for (const file of await fs.readdir(directory)) {
    if (clean && file.endsWith(TEMP_SUFFIX)) await removeQuietly(NodePath.join(directory, file))
    if (!isCursorFileName(file)) continue
    const decoded = await readEntryFile(directory, file)
    if (decoded !== undefined) cache.set(decoded.name, decoded.entry)
  }
  return cache
}

/**
 * Opens the cursor directory `directory` (an absolute path): creates it if missing, takes its lock
 * until the scope closes, cleans up and loads every entry. @internal
 */
export const openCursorDirectory = (directory: string): Effect.Effect<EntryStore, CursorStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const openFailure = (cause: unknown) =>
      new CursorStoreError({ method: "open", message: `Cannot open the cursor store in ${directory}: ${message(cause)}`, cause })
    yield* Effect.tryPromise({ try: () => makeDirectoryDurably(directory), catch: openFailure })
    yield* Effect.acquireRelease(
      Effect.try({ try: () => lockDirectory(nodeFileIo, directory), catch: openFailure }),
      (release) => Effect.sync(release)
    )
    const cache = yield* Effect.tryPromise({ try: () => load(directory, true), catch: openFailure })
    const locks = yield* RcMap.make({ lookup: (_name: string) => Semaphore.make(1) })

    /** Durably replaces (or, for `null`, removes) the file of `name`. */
    const store = (method: string, name: string, entry: CursorEntry | null) => {
      const file = NodePath.join(directory, cursorFileName(name))
      return attempt(
        `${entry === null ? "remove" : "replace"} ${file} (the cursor of ${JSON.stringify(name)})`,
        async () => {
          if (entry === null) {
            await fs.rm(file, { force: true })
          } else {
            const temp = NodePath.join(directory, `${SecureRandom.uuidV4Unsafe()}${TEMP_SUFFIX}`)
            try {
              await writeFileDurably(temp, encodeCursorFile(name, entry))
              await fs.rename(temp, file)
            } catch (cause) {
              await removeQuietly(temp).catch(() => undefined)
              throw cause
            }
          }
          await fsyncDirectory(directory)
        },
        (text, cause) => new CursorStoreError({ method, message: `CursorStore.${method}: ${text}`, cause })
      )
    }

    return {
      read: (name) => Effect.sync(() => cache.get(name)),
      update: (method, name, change) =>
        Effect.scoped(Effect.flatMap(RcMap.get(locks, name), (semaphore) =>
          semaphore.withPermit(Effect.uninterruptible(Effect.suspend(() => {
            const current = cache.get(name)
            const decided = change(current)
            const next = decided.store
            if (next === undefined || (next === null && current === undefined)) return Effect.succeed(decided.result)
            return Effect.map(store(method, name, next), () => {
              if (next === null) cache.delete(name)
              else cache.set(name, next)
              return decided.result
            })
          }))))),
      entries: Effect.sync(() => Array.from(cache))
    } satisfies EntryStore
  })

/**
 * Opens the existing cursor directory `directory` (an absolute path) read-only, beside the process
 * that holds it: no lock taken, nothing cleaned up or written. Every read reads the files as they
 * are then; every update fails. @internal
 */
export const openCursorDirectoryReadOnly = (directory: string): Effect.Effect<EntryStore, CursorStoreError> => {
  const failure = (method: string) => (cause: unknown) =>
    new CursorStoreError({ method, message: `CursorStore.${method}: cannot read the cursor store in ${directory}: ${message(cause)}`, cause })
  return Effect.as(
    Effect.tryPromise({ try: () => fs.readdir(directory), catch: failure("open") }),
    {
      read: (name) => Effect.tryPromise({ try: async () => (await readEntryFile(directory, cursorFileName(name)))?.entry, catch: failure("get") }),
      update: (method) =>
        Effect.fail(new CursorStoreError({ method, message: `CursorStore.${method}: the cursor store in ${directory} is open read-only` })),
      entries: Effect.tryPromise({ try: async () => Array.from(await load(directory, false)), catch: failure("list") })
    } satisfies EntryStore
  )
}
