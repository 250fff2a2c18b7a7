/**
 * Exporting a fold's state as an artifact (`projectionArtifact.ts`) to an artifact store (a
 * directory, or an `ArtifactStore` such as a NATS object store) and importing the newest one into a
 * replica. An export holds the projection's export lease (in the CursorStore, renewed while
 * it writes), so at most one replica exports at a time; a round already exported (or a later one) is
 * not exported again, so racing replicas produce one artifact per round. An import holds the
 * replica's own lease (so no instance of it runs meanwhile), stores the state as the replica's
 * saved state at the artifact's cursor and commits the cursor there.
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as ArtifactStore from "../ArtifactStore.ts"
import type * as Codec from "../Codec.ts"
import type { CursorStore } from "../CursorStore.ts"
import type { SnapshotStore } from "../SnapshotStore.ts"
import * as Artifact from "./projectionArtifact.ts"
import { FOLD_NAMESPACE, type FoldPoint } from "./projectionFold.ts"
import * as Lease from "./subscriptionLease.ts"
import { integerProblem, nameProblem } from "./validate.ts"

/** The one data file of a fold's artifact: its state, encoded as its saved states are. @internal */
export const STATE_FILE = "state.msgpack"

/** How long an export lease lasts without renewal (it is renewed every third of it while the export runs). */
const EXPORT_LEASE_MS = 30_000

/** What identifies a fold's artifacts and decodes its state. @internal */
export interface FoldIdentity<S> {
  readonly name: string
  readonly version: number
  readonly schemaVersion: number
  readonly stateCodec: Codec.Codec<S>
}

/** Builds the module's error: `method` is `"export"` or `"import"`. @internal */
export type Failure<E> = (method: string, message: string, cause?: unknown) => E

const describe = (cause: unknown): string => cause instanceof Error ? cause.message : String((cause as { message?: unknown })?.message ?? cause)

const STORE_METHODS = ["describe", "writeRound", "completeRounds", "read", "removeIncomplete"] as const

/** The artifact store `location` names, or a sentence saying what is wrong with it. */
const storeOf = (location: ArtifactStore.Location): ArtifactStore.ArtifactStore | string => {
  const artifacts = location?.artifacts
  const directory = location?.directory
  if (artifacts !== undefined && directory !== undefined) return "give either directory or artifacts, not both"
  if (artifacts === undefined) return nameProblem("directory", directory) ?? ArtifactStore.directory(directory!)
  const missing = STORE_METHODS.filter((method) => typeof (artifacts as unknown as Record<string, unknown>)?.[method] !== "function")
  return missing.length === 0 ? artifacts : `artifacts must be an ArtifactStore (ArtifactStore.directory, NatsArtifacts.make); it has no ${missing.join(", ")}`
}

/** The name of the lease that lets one replica of `name@version` export at a time. @internal */
export const exportLeaseName = (identity: { readonly name: string; readonly version: number }): string =>
  `${identity.name}@${identity.version}/export`

/**
 * Exports `point()` as round `round` to the store `location` names, unless another replica is
 * exporting now or that round (or a later one) is already there: then `Option.none()`. @internal
 */
export const exportState = <S, E>(
  identity: FoldIdentity<S>,
  options: { readonly location: ArtifactStore.Location; readonly round: number; readonly owner: string; readonly point: () => FoldPoint<S> },
  cursors: CursorStore,
  failure: Failure<E>
): Effect.Effect<Option.Option<Artifact.Manifest>, E> =>
  Effect.gen(function*() {
    const { owner, round } = options
    const label = `${identity.name}@${identity.version}`
    const artifacts = storeOf(options.location)
    const problem = typeof artifacts === "string" ? artifacts : integerProblem("round", round, 0)
    if (problem !== undefined || typeof artifacts === "string") return yield* Effect.fail(failure("export", `Cannot export ${label}: ${problem}`))
    const step = <A>(what: string, effect: Effect.Effect<A, ArtifactStore.ArtifactStoreError>) =>
      Effect.mapError(effect, (cause) => failure("export", `Cannot export ${label} round ${round}: ${what}: ${cause.message}`, cause))
    const name = exportLeaseName(identity)
    const asked = yield* Clock.currentTimeMillis
    const taken = yield* Effect.result(cursors.acquire(name, owner, EXPORT_LEASE_MS))
    if (Result.isFailure(taken)) {
      if (taken.failure._tag === "LeaseHeld") return Option.none()
      return yield* Effect.fail(failure("export", `Cannot export ${label}: taking its export lease failed: ${taken.failure.message}`, taken.failure))
    }
    const held: Lease.Held = { lease: taken.success, validUntil: asked + EXPORT_LEASE_MS }
    return yield* Effect.scoped(Effect.gen(function*() {
      yield* Effect.addFinalizer(() => Effect.ignore(cursors.release(name, owner)))
      const lost = yield* Deferred.make<void>()
      yield* Effect.forkScoped(Lease.keep({ cursors, name, owner, ttlMs: EXPORT_LEASE_MS }, held, lost))
      const write = Effect.gen(function*() {
        const complete = yield* step("listing the artifacts", artifacts.completeRounds(identity.name, identity.version))
        if (complete.length > 0 && complete[complete.length - 1]! >= round) return Option.none()
        // The lease is ours: no live export uses what a crashed one left.
        yield* step("removing what crashed exports left", Artifact.removeIncomplete(artifacts, identity.name, identity.version))
        // State and seq in one synchronous step: the fold never changes between them.
        const point = options.point()
        const bytes = identity.stateCodec.encode(point.state)
        if (Result.isFailure(bytes)) {
          return yield* Effect.fail(failure("export", `Cannot export ${label}: its state at seq ${point.seq} does not encode: ${describe(bytes.failure)}`, bytes.failure))
        }
        const createdAt = yield* Clock.currentTimeMillis
        const entry = yield* step(
          "writing the artifact",
          Artifact.writeArtifact(artifacts, {
            projection: identity.name,
            version: identity.version,
            round,
            cursor: point.seq,
            timestamp: point.timestamp,
            schemaVersion: identity.schemaVersion,
            writer: owner,
            createdAt,
            files: [{ name: STATE_FILE, bytes: bytes.success }]
          })
        )
        return Option.some(entry.manifest)
      })
      const leaseLost = Effect.andThen(
        Deferred.await(lost),
        Effect.fail(failure("export", `Cannot export ${label} round ${round}: the export lease was lost while writing (another replica may export this round)`))
      )
      return yield* Effect.raceFirst(write, leaseLost)
    }))
  })

/**
 * Exports round `floor(now / everyMs)` by `exportRound` at the start of every round, for ever; a
 * failed export is logged and tried again the next round. @internal
 */
export const everyRound = <E extends { readonly message: string }>(
  everyMs: number,
  exportRound: (round: number) => Effect.Effect<unknown, E>
): Effect.Effect<never> =>
  Effect.forever(Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    yield* Effect.sleep(everyMs - (now % everyMs))
    const result = yield* Effect.result(exportRound(Math.floor((yield* Clock.currentTimeMillis) / everyMs)))
    if (result._tag === "Failure") yield* Effect.logWarning(result.failure.message)
  }))

/**
 * Imports the newest artifact of `identity` in the store `location` names into the replica `id` (its
 * saved state and cursor), unless there is none or the replica is already at or past it: then
 * `Option.none()`. Fails while an instance of the replica runs. @internal
 */
export const importLatest = <S, E>(
  identity: FoldIdentity<S>,
  options: { readonly location: ArtifactStore.Location; readonly id: string; readonly owner: string },
  services: { readonly cursors: CursorStore; readonly snapshots: SnapshotStore },
  failure: Failure<E>
): Effect.Effect<Option.Option<Artifact.Manifest>, E> =>
  Effect.gen(function*() {
    const { cursors, snapshots } = services
    const { id, owner } = options
    const cannot = (message: string, cause?: unknown) => failure("import", `Cannot import into ${JSON.stringify(id)}: ${message}`, cause)
    const store = storeOf(options.location)
    if (typeof store === "string") return yield* Effect.fail(cannot(store))
    const artifact = yield* Effect.mapError(Artifact.readLatestArtifact(store, identity.name, identity.version), (cause) => cannot(cause.message, cause))
    if (artifact === undefined || artifact.manifest.cursor === 0) return Option.none()
    const { manifest } = artifact
    const where = `the artifact in ${artifact.location}`
    if (manifest.schemaVersion !== identity.schemaVersion) {
      return yield* Effect.fail(cannot(`${where} holds a state of schemaVersion ${manifest.schemaVersion}, not ${identity.schemaVersion}`))
    }
    const bytes = artifact.files.get(STATE_FILE)
    if (bytes === undefined) return yield* Effect.fail(cannot(`${where} has no ${STATE_FILE}`))
    const decoded = identity.stateCodec.decode(bytes)
    if (Result.isFailure(decoded)) return yield* Effect.fail(cannot(`${where}: ${STATE_FILE} does not decode: ${describe(decoded.failure)}`, decoded.failure))
    const lease = yield* Effect.mapError(cursors.acquire(id, owner, EXPORT_LEASE_MS), (error) => cannot(error.message, error))
    return yield* Effect.ensuring(
      Effect.gen(function*() {
        const saved = Option.getOrUndefined(yield* snapshots.get(FOLD_NAMESPACE, id))
        const cursor = Option.getOrUndefined(yield* cursors.get(id))
        if ((saved !== undefined && saved.seq >= manifest.cursor) || (cursor !== undefined && cursor.seq >= manifest.cursor)) return Option.none()
        yield* snapshots.put({
          namespace: FOLD_NAMESPACE,
          id,
          version: manifest.cursor,
          seq: manifest.cursor,
          timestamp: manifest.timestamp,
          schemaVersion: manifest.schemaVersion,
          state: bytes
        })
        yield* cursors.commit(id, manifest.cursor, lease)
        return Option.some(manifest)
      }).pipe(Effect.mapError((error) => cannot(error.message, error))),
      Effect.ignore(cursors.release(id, owner))
    )
  })
