/**
 * A SnapshotStore in a local directory, one file per snapshot, on `node:fs` (Bun, Deno and Node).
 *
 * Layout: `{directory}/{hash(namespace)}/{hash(namespace, id)}/{version:020}-{timestamp:020}.snapshot`;
 * names are hashed because namespaces and ids may be longer than a file name may be. Each file holds
 * the snapshot (namespace and id included) as msgpack with a format tag and a CRC-32.
 *
 * A write goes to a temporary file, is fsynced, renamed into place and the directory fsynced, so a
 * snapshot is there whole or not at all; temporary files left by a crash are removed at start. A
 * damaged snapshot file is reported (logged with its path) and skipped, so the runtime falls back to an
 * older snapshot or to replaying the records — a snapshot is only ever a speed-up. A read that finds a
 * file it listed gone (a concurrent put's retention removed it for a newer one) lists the directory
 * again, so it never misses the snapshot that replaced it.
 *
 * `makeReadOnly` opens an existing directory beside its writer (the CLI, another process) and
 * changes nothing: no directory created, no temp file removed; `put` and `delete` fail.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { layerFromConfig, snapshotKeep } from "../internal/config.ts"
import { SnapshotStore, type SnapshotStoreError, type SnapshotStoreOptions } from "../SnapshotStore.ts"
import { dataDirectory } from "./internal/config.ts"
import { nodeSnapshotReads, open } from "./internal/snapshotDirectory.ts"

/**
 * Options of the file SnapshotStore.
 *
 * @since 0.1.0
 * @category models
 */
export interface FileSnapshotStoreOptions extends SnapshotStoreOptions {
  /** The directory snapshots are kept in; created if missing. */
  readonly directory: string
}

/**
 * Builds a file SnapshotStore over `options.directory`, removing temporary files a crash left.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: FileSnapshotStoreOptions): Effect.Effect<SnapshotStore, SnapshotStoreError> =>
  open(options, nodeSnapshotReads)

/**
 * A file SnapshotStore as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: FileSnapshotStoreOptions): Layer.Layer<SnapshotStore, SnapshotStoreError> =>
  Layer.effect(SnapshotStore, make(options))

/**
 * The options from `Config`: `ANNALS_SNAPSHOT_DIR` (default `snapshots` below `ANNALS_DATA_DIR`,
 * whose default is `data`) and `ANNALS_SNAPSHOT_KEEP` (≥ 1, default 1).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<FileSnapshotStoreOptions> = Config.all({
  directory: dataDirectory("ANNALS_SNAPSHOT_DIR", "snapshots"),
  keep: snapshotKeep
})

/**
 * The file SnapshotStore with its options from `config` (the environment by default); `overrides`
 * replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (overrides?: Partial<FileSnapshotStoreOptions>): Layer.Layer<SnapshotStore, SnapshotStoreError | Config.ConfigError> =>
  layerFromConfig(config, layer, overrides)

/**
 * Opens the file SnapshotStore in the existing `options.directory` read-only: reads see what the
 * directory holds at each call; `put` and `delete` fail with a `SnapshotStoreError`, and nothing on
 * disk is changed (a missing directory fails with a `SnapshotStoreError` naming it).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeReadOnly = (options: Pick<FileSnapshotStoreOptions, "directory">): Effect.Effect<SnapshotStore, SnapshotStoreError> =>
  open(options, nodeSnapshotReads, true)

/**
 * The read-only file SnapshotStore as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerReadOnly = (options: Pick<FileSnapshotStoreOptions, "directory">): Layer.Layer<SnapshotStore, SnapshotStoreError> =>
  Layer.effect(SnapshotStore, makeReadOnly(options))
