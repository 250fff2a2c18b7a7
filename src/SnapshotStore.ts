/**
 * The SnapshotStore: saved aggregate states, so that loading an aggregate folds only the records
 * after its latest snapshot.
 *
 * A snapshot's `version`, `seq` and `timestamp` are those of the newest record folded into the state
 * (not the time it was saved), so "the youngest snapshot with timestamp ≤ T" is exact for time travel.
 * Each stream keeps at most `keep` snapshots (a layer option, default 1); the oldest go first.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { resolveKeep, scanProblem, select, snapshotProblem, streamArgsProblem } from "./internal/snapshotChecks.ts"
import { failIf, lowerBound, streamKey } from "./internal/validate.ts"
import type { TaggedErrorClass } from "./internal/errors.ts"

/**
 * One saved state of one stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly namespace: string
  readonly id: string
  /** Version of the newest record folded into `state`. */
  readonly version: number
  /** Seq of that record. */
  readonly seq: number
  /** Timestamp of that record. */
  readonly timestamp: number
  /** The aggregate's snapshot schema version; snapshots of another schema version are ignored by the runtime. */
  readonly schemaVersion: number
  /** The encoded state. Treat as read-only. */
  readonly state: Uint8Array
}

/**
 * Selects the youngest snapshot with `version ≤ maxVersion` and `timestamp ≤ maxTimestamp`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotCriteria {
  readonly maxVersion?: number | undefined
  readonly maxTimestamp?: number | undefined
}

/**
 * Options every SnapshotStore layer accepts.
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotStoreOptions {
  /** Snapshots kept per stream (≥ 1, default 1); the oldest go first. */
  readonly keep?: number | undefined
}

/**
 * The fields of a `SnapshotStoreError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface SnapshotStoreErrorFields {
  /** The operation that failed, e.g. `"put"`. */
  readonly method: string
  /** What went wrong and where (stream, file …). */
  readonly message: string
  readonly cause?: unknown
}

const SnapshotStoreErrorBase: TaggedErrorClass<"SnapshotStoreError", SnapshotStoreErrorFields> = Data.TaggedError("SnapshotStoreError")

/**
 * A snapshot operation failed: bad input, a storage fault, or a corrupt snapshot. `message` names what and where.
 *
 * @since 0.1.0
 * @category errors
 */
export class SnapshotStoreError extends SnapshotStoreErrorBase {}

/**
 * The SnapshotStore service.
 *
 * @since 0.1.0
 * @category services
 */
export interface SnapshotStore {
  /** The youngest snapshot of the stream matching `criteria` (none: the latest), or `Option.none()`. */
  readonly get: (
    namespace: string,
    id: string,
    criteria?: SnapshotCriteria
  ) => Effect.Effect<Option.Option<Snapshot>, SnapshotStoreError>
  /** Upserts a snapshot (same version: replaced) and drops the oldest beyond `keep`. */
  readonly put: (snapshot: Snapshot) => Effect.Effect<void, SnapshotStoreError>
  /** Removes every snapshot of the stream; a no-op if there is none. */
  readonly delete: (namespace: string, id: string) => Effect.Effect<void, SnapshotStoreError>
  /** The latest snapshot of every stream in exactly `namespace`, ordered by id. */
  readonly scan: (namespace: string) => Stream.Stream<Snapshot, SnapshotStoreError>
}

/**
 * The SnapshotStore service key.
 *
 * @since 0.1.0
 * @category services
 */
export const SnapshotStore: Context.Service<SnapshotStore, SnapshotStore> = Context.Service<SnapshotStore>(
  "annals/SnapshotStore"
)

const error = (method: string) => (message: string): SnapshotStoreError =>
  new SnapshotStoreError({ method, message })

/**
 * An in-memory SnapshotStore.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options?: SnapshotStoreOptions): Effect.Effect<SnapshotStore, SnapshotStoreError> => {
  const keep = resolveKeep(options)
  if (typeof keep === "string") return Effect.fail(new SnapshotStoreError({ method: "makeMemory", message: keep }))
  return Effect.sync(() => {
    // stream key → snapshots sorted by version ascending
    const streams = new Map<string, Array<Snapshot>>()
    return SnapshotStore.of({
      get: (namespace, id, criteria) =>
        Effect.andThen(
          failIf(streamArgsProblem("get", namespace, id, criteria), error("get")),
          Effect.sync(() => Option.fromUndefinedOr(select(streams.get(streamKey(namespace, id)) ?? [], criteria)))
        ),
      put: (snapshot) =>
        Effect.andThen(
          failIf(snapshotProblem(snapshot), error("put")),
          Effect.sync(() => {
            const key = streamKey(snapshot.namespace, snapshot.id)
            const versions = streams.get(key) ?? []
            const copy: Snapshot = { ...snapshot, state: new Uint8Array(snapshot.state) }
            const at = lowerBound(versions, snapshot.version, (s) => s.version)
            versions.splice(at, versions[at]?.version === snapshot.version ? 1 : 0, copy)
            if (versions.length > keep) versions.splice(0, versions.length - keep)
            streams.set(key, versions)
          })
        ),
      delete: (namespace, id) =>
        Effect.andThen(
          failIf(streamArgsProblem("delete", namespace, id), error("delete")),
          Effect.sync(() => {
            streams.delete(streamKey(namespace, id))
          })
        ),
      scan: (namespace) =>
        Stream.unwrap(Effect.as(
          failIf(scanProblem(namespace), error("scan")),
          Stream.suspend(() => {
            const latest: Array<Snapshot> = []
            for (const versions of streams.values()) {
              const last = versions[versions.length - 1]
              if (last !== undefined && last.namespace === namespace) latest.push(last)
            }
            latest.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
            return Stream.fromArray(latest)
          })
        ))
    })
  })
}

/**
 * A fresh in-memory SnapshotStore per layer build.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: SnapshotStoreOptions): Layer.Layer<SnapshotStore, SnapshotStoreError> =>
  Layer.effect(SnapshotStore, makeMemory(options))
