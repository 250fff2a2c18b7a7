/**
 * A CursorStore in a local directory, on `node:fs` (Bun, Deno and Node): one small file per
 * subscription name holding its cursor, its lease and its last fencing token, with a CRC-32.
 *
 * What a commit survives: an operation that changes an entry (`commit`, `acquire`, `release`,
 * `delete`) returns after the new file was fsynced, renamed over the old one and the directory
 * fsynced, so an acknowledged change survives a crash and a power loss; a file is there whole or not
 * at all (temporary files a crash left are removed at open). The writes run on the thread pool, so a commit does not block the event loop
 * (a subscription applies its next batch meanwhile). Updates of one name are serialized; updates of
 * different names run together. A failed write fails its operation with a `CursorStoreError`
 * naming the file, and reads keep showing the previous entry (after a restart, the file may show
 * either, as after a crash mid-write).
 *
 * One process per directory: the store takes the directory's `LOCK` (as the file Journal does) for
 * its lifetime, and a second open — another process, or another layer in this one — fails with a
 * `CursorStoreError` naming the owner; a lock left by a dead process is taken over. Processes
 * (on one machine or several) share cursors through the server backends instead; a reader beside
 * the owner (the CLI) opens the directory with `makeReadOnly`, without the lock. Every entry is read at open and reads are served from memory; a damaged
 * or unreadable entry file fails the open with an error naming the file, and nothing is deleted.
 *
 * Leases persist across a reopen: a process restarted after a crash finds its predecessor's lease
 * and waits for it to expire (or takes it at once when it uses the same owner id).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as NodePath from "node:path"
import { CursorStore, CursorStoreError, type EntryStore, make as makeStore } from "../CursorStore.ts"
import { layerFromConfig } from "../internal/config.ts"
import { dataDirectory } from "./internal/config.ts"
import { openCursorDirectory, openCursorDirectoryReadOnly } from "./internal/cursorDirectory.ts"

/**
 * Options of the file CursorStore.
 *
 * @since 0.1.0
 * @category models
 */
export interface FileCursorStoreOptions {
  /** The directory the cursors are kept in; created if missing. */
  readonly directory: string
}

/**
 * Opens the CursorStore in `options.directory` and holds the directory's lock until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: FileCursorStoreOptions): Effect.Effect<CursorStore, CursorStoreError, Scope.Scope> =>
  openWith(options, openCursorDirectory)

/**
 * Opens the CursorStore in the existing `options.directory` read-only, beside the process that
 * holds it (the CLI): takes no lock and changes nothing on disk. `get` and `list` read the files
 * as they are at each call; `commit`, `acquire`, `release` and `delete` fail with a
 * `CursorStoreError`, and so does a missing directory.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeReadOnly = (options: FileCursorStoreOptions): Effect.Effect<CursorStore, CursorStoreError> =>
  openWith(options, openCursorDirectoryReadOnly)

/** The store over the entries `open` gives for the directory of `options`, once its path is checked. */
const openWith = <R>(
  options: FileCursorStoreOptions,
  open: (directory: string) => Effect.Effect<EntryStore, CursorStoreError, R>
): Effect.Effect<CursorStore, CursorStoreError, R> =>
  typeof options?.directory !== "string" || options.directory.length === 0
    ? Effect.fail(new CursorStoreError({ method: "open", message: "Cannot open a file cursor store: directory must be a non-empty path" }))
    : Effect.map(open(NodePath.resolve(options.directory)), makeStore)

/**
 * The file CursorStore as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: FileCursorStoreOptions): Layer.Layer<CursorStore, CursorStoreError> =>
  Layer.effect(CursorStore, make(options))

/**
 * The options from `Config`: `ANNALS_CURSOR_DIR` (default `cursors` below `ANNALS_DATA_DIR`, whose
 * default is `data`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<FileCursorStoreOptions> = Config.all({ directory: dataDirectory("ANNALS_CURSOR_DIR", "cursors") })

/**
 * The file CursorStore with its options from `config` (the environment by default); `overrides`
 * replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (overrides?: Partial<FileCursorStoreOptions>): Layer.Layer<CursorStore, CursorStoreError | Config.ConfigError> =>
  layerFromConfig(config, layer, overrides)

/**
 * The read-only file CursorStore as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerReadOnly = (options: FileCursorStoreOptions): Layer.Layer<CursorStore, CursorStoreError> =>
  Layer.effect(CursorStore, makeReadOnly(options))
