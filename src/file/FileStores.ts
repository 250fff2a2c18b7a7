/**
 * The Journal, SnapshotStore and CursorStore of one store directory — `journal/`, `snapshots/` and
 * `cursors/` below it, the layout the examples, `Stores.layerUrl` and the `annals` command line use —
 * what an application that keeps everything in files provides.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as NodePath from "node:path"
import { CursorStore, CursorStoreError } from "../CursorStore.ts"
import type { Journal, JournalError } from "../Journal.ts"
import { SnapshotStore, SnapshotStoreError } from "../SnapshotStore.ts"
import * as FileCursorStore from "./FileCursorStore.ts"
import * as FileJournal from "./FileJournal.ts"
import * as FileSnapshotStore from "./FileSnapshotStore.ts"

/**
 * Options of the three stores: the store directory, and the journal's and snapshots' own options.
 *
 * @since 0.1.0
 * @category models
 */
export interface FileStoresOptions extends Omit<FileJournal.FileJournalOptions, "directory"> {
  /** The store directory; `journal/`, `snapshots/` and `cursors/` are created below it if missing. */
  readonly directory: string
  /** Snapshots kept per stream (default 1). */
  readonly keep?: number | undefined
}

/**
 * The three stores of `options.directory`, each holding its subdirectory's lock (one writer per store).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: FileStoresOptions
): Layer.Layer<Journal | SnapshotStore | CursorStore, JournalError | SnapshotStoreError | CursorStoreError> => {
  const { directory, keep, ...journal } = options
  return Layer.mergeAll(
    FileJournal.layer({ ...journal, directory: NodePath.join(directory, "journal") }),
    FileSnapshotStore.layer({ directory: NodePath.join(directory, "snapshots"), keep }),
    FileCursorStore.layer({ directory: NodePath.join(directory, "cursors") })
  )
}

/** A SnapshotStore with no snapshots that refuses writes: a store's missing `snapshots/`, read-only. */
const noSnapshots = (directory: string): Layer.Layer<SnapshotStore> => {
  const refuse = (method: string) =>
    Effect.fail(new SnapshotStoreError({ method, message: `The snapshots in ${directory} are open read-only: ${method} is refused` }))
  return Layer.succeed(SnapshotStore, {
    get: () => Effect.succeedNone,
    scan: () => Stream.empty,
    put: () => refuse("put"),
    delete: () => refuse("delete")
  })
}

/** A CursorStore with no cursors that refuses writes: a store's missing `cursors/`, read-only. */
const noCursors = (directory: string): Layer.Layer<CursorStore> => {
  const refuse = (method: string) =>
    Effect.fail(new CursorStoreError({ method, message: `The cursors in ${directory} are open read-only: ${method} is refused` }))
  return Layer.succeed(CursorStore, {
    get: () => Effect.succeedNone,
    list: Effect.succeed([]),
    commit: () => refuse("commit"),
    acquire: () => refuse("acquire"),
    release: () => refuse("release"),
    delete: () => refuse("delete")
  })
}

/**
 * The three stores of the existing store `directory`, read-only, beside its writer: no lock taken,
 * nothing written, writes refused (see `FileJournal.makeReadOnly`). Its `journal/` must exist (else
 * a `JournalError` naming it); a store that never kept a snapshot or a cursor has no `snapshots/` or
 * `cursors/` yet, and then reads as having none.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerReadOnly = (
  directory: string
): Layer.Layer<Journal | SnapshotStore | CursorStore, JournalError | SnapshotStoreError | CursorStoreError> =>
  Layer.unwrap(Effect.sync(() => {
    const below = (name: string) => NodePath.join(directory, name)
    return Layer.mergeAll(
      FileJournal.layerReadOnly({ directory: below("journal") }),
      fs.existsSync(below("snapshots")) ? FileSnapshotStore.layerReadOnly({ directory: below("snapshots") }) : noSnapshots(below("snapshots")),
      fs.existsSync(below("cursors")) ? FileCursorStore.layerReadOnly({ directory: below("cursors") }) : noCursors(below("cursors"))
    )
  }))
