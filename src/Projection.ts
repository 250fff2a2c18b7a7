/**
 * Projections: typed subscriptions that build read models from the events of chosen aggregates.
 *
 * - `Projection.make({ name, aggregates, handle })`: each event, decoded with its aggregate's Schema,
 *   is handed to an effectful `handle(event, record)` (write a table, send an email); at-least-once,
 *   so the handler must be idempotent.
 * - `Projection.fold({ name, aggregates, state, initial, evolve })`: a pure fold of the events into
 *   one state kept in memory (`get`), saved to the SnapshotStore at the seq it is at, and restored
 *   from there on start. Its cursor never passes what is saved, so each record is folded exactly
 *   once into what is kept, across crashes and restarts.
 *
 * Either runs as a `Subscription` named `name@version` (with `#replica` for a fold replica), so it
 * reads the Archive for truncated history (`archive: true`), runs one instance per name across
 * processes, and its cursor holds the Checkpointer back (`cursors: true`). A record that does not
 * decode stops the projection with an error naming its stream, version and seq: it is never skipped.
 *
 * **Rebuilds** are blue/green: bump `version` and run the new version beside the old one; it starts
 * from the beginning of the log (the Archive included) and reports when it has caught up
 * (`awaitCaughtUp`, `status`), while the old one keeps serving until you switch. `reset` clears a
 * version for an in-place rebuild. A fold can **export** its state as an artifact (the data and a
 * `MANIFEST.json` written last, in a directory or an `ArtifactStore` such as a NATS object store) that
 * a new replica **imports** before following the log from the artifact's cursor (`exportState`,
 * `importLatest`).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Aggregate from "./Aggregate.ts"
import type * as ArtifactStore from "./ArtifactStore.ts"
import * as Codec from "./Codec.ts"
import { CursorStore } from "./CursorStore.ts"
import type { TaggedErrorClass } from "./internal/errors.ts"
import type * as Artifact from "./internal/projectionArtifact.ts"
import * as Exports from "./internal/projectionExport.ts"
import * as Fold from "./internal/projectionFold.ts"
import { type Decoders, decode, decoders, type RecordInfo as Info, recordInfo } from "./internal/projectionSources.ts"
import { Permanent } from "./internal/subscriptionBatches.ts"
import { start } from "./internal/subscriptionStart.ts"
import { integerProblem, nameProblem } from "./internal/validate.ts"
import { Journal, type JournalRecord } from "./Journal.ts"
import { SnapshotStore } from "./SnapshotStore.ts"
import {
  type BatchOptions,
  type LeaseOptions,
  type Requirements,
  type RetryOptions,
  type Subscription,
  SubscriptionError
} from "./Subscription.ts"

/**
 * Where a record is, when it was appended, and its metadata — what a handler gets beside the event.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordInfo extends Info {}

/**
 * The fields of a `ProjectionError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface ProjectionErrorFields {
  /** The projection's name (with its version). */
  readonly projection: string
  /** What failed: `"make"`, `"fold"`, `"reset"`, `"export"`, `"import"`. */
  readonly method: string
  readonly message: string
  readonly cause?: unknown
}

const ProjectionErrorBase: TaggedErrorClass<"ProjectionError", ProjectionErrorFields> = Data.TaggedError("ProjectionError")

/**
 * A projection was defined with bad options, or a reset, export or import failed. (A running
 * projection that stops fails with the `SubscriptionError` of its subscription, naming the seq.)
 *
 * @since 0.1.0
 * @category errors
 */
export class ProjectionError extends ProjectionErrorBase {}

/**
 * Which events a projection reads: those of `aggregates`, or, for namespaces without an aggregate
 * definition, `events` mapping each namespace to its event Schema.
 *
 * @since 0.1.0
 * @category models
 */
export type Sources<E> =
  | { readonly aggregates: ReadonlyArray<Aggregate.Aggregate<E & { readonly _tag: string }, any>>; readonly events?: undefined }
  | { readonly events: Readonly<Record<string, Schema.Codec<E & { readonly _tag: string }, unknown>>>; readonly aggregates?: undefined }

/**
 * Options every projection takes (see `Subscription.make` for batch, retry, lease and archive).
 *
 * @since 0.1.0
 * @category models
 */
export interface CommonOptions<A extends boolean> {
  /** The projection's name. Its subscription is `name@version`. */
  readonly name: string
  /** Bump it to rebuild: a new version starts from the beginning of the log (default 1). */
  readonly version?: number | undefined
  readonly batch?: BatchOptions | undefined
  readonly retry?: RetryOptions | undefined
  readonly lease?: LeaseOptions | undefined
  /** `true`: history the journal no longer holds is read from the Archive. */
  readonly archive?: A | undefined
}

/**
 * A projection that hands each event to an effectful handler.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handler<E, Err, R, A extends boolean> {
  readonly _tag: "Handler"
  readonly name: string
  readonly version: number
  readonly options: CommonOptions<A>
  readonly decoders: Decoders<E>
  readonly handle: (event: E, record: RecordInfo) => Effect.Effect<void, Err, R>
}

/**
 * A projection that folds the events into one state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Folded<S, E, A extends boolean> {
  readonly _tag: "Fold"
  readonly name: string
  readonly version: number
  readonly options: CommonOptions<A>
  readonly decoders: Decoders<E>
  readonly stateCodec: Codec.Codec<S>
  readonly initial: S
  readonly evolve: (state: S, event: E, record: RecordInfo) => S
  /** Saves the state after this many folded records, and whenever it has reached the end of the log. */
  readonly everyRecords: number
  /** The version of the state's encoding: a saved state of another one is ignored (the fold is rebuilt). */
  readonly schemaVersion: number
}

/**
 * A running projection: its subscription.
 *
 * @since 0.1.0
 * @category models
 */
export interface Running extends Subscription {}

/**
 * A running fold: its subscription, and the state it has folded.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunningFold<S> extends Subscription {
  /** The state this instance has folded so far (the initial state while it stands by). */
  readonly get: Effect.Effect<S>
  /** The state and the seq of the last record it has seen, in one step. */
  readonly point: Effect.Effect<{ readonly state: S; readonly seq: number; readonly timestamp: number }>
  /**
   * Exports the state as round `round` of an artifact (see `ExportOptions`):
   * `Option.none()` when this instance is not active, another replica is exporting now, or that
   * round (or a later one) was exported already — so replicas racing produce one artifact per round.
   */
  readonly exportState: (options: ExportOptions) => Effect.Effect<Option.Option<Manifest>, ProjectionError>
}

/**
 * Where and which round to export: a `directory`, where the artifact is the directory
 * `directory/<name as hex>@<version>/<round, 20 digits>/` holding `state.msgpack` and a
 * `MANIFEST.json` written last and fsynced, or an `artifacts` store (`ArtifactStore`; e.g.
 * `NatsArtifacts.make` of `annals/nats`, objects named the same way). After a crash mid-export there
 * is no manifest, and the next export removes what is left. `round` is an integer ≥ 0 (e.g. the hour
 * number): one artifact per round across replicas.
 *
 * @since 0.1.0
 * @category models
 */
export type ExportOptions = ArtifactStore.Location & { readonly round: number }

/**
 * What an artifact's `MANIFEST.json` holds: format, projection name and version, round, the cursor
 * its state is at (and that record's timestamp), the state's schemaVersion, the writer, when, and
 * each data file's size and SHA-256.
 *
 * @since 0.1.0
 * @category models
 */
export interface Manifest extends Artifact.Manifest {}

const DEFAULT_EVERY_RECORDS = 1000

const fail = (projection: string, method: string, message: string, cause?: unknown) =>
  new ProjectionError({ projection, method, message, ...(cause !== undefined ? { cause } : {}) })

/** The checked name, version and codecs of a definition, or throws (a definition error is a programming error). */
const defined = <E>(what: string, options: CommonOptions<boolean> & Sources<E>) => {
  const version = options.version ?? 1
  const problem = nameProblem("name", options?.name) ?? integerProblem("version", version, 1)
  const codecs = problem === undefined ? decoders<E>(options.aggregates, options.events) : problem
  if (typeof codecs === "string") throw new Error(`Projection.${what}${typeof options?.name === "string" ? ` (${JSON.stringify(options.name)})` : ""}: ${codecs}`)
  return { name: options.name, version, decoders: codecs }
}

/**
 * Defines a projection that hands each event of the chosen aggregates, decoded, to `handle`.
 *
 * ```ts
 * const emails = Projection.make({
 *   name: "welcome-emails",
 *   aggregates: [Account],
 *   handle: (event, record) => event._tag === "Opened" ? sendWelcome(record.stream.id) : Effect.void
 * })
 * ```
 *
 * Throws on a bad name, version or source list.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E, Err = never, R = never, A extends boolean = false>(
  options: CommonOptions<A> & Sources<E> & { readonly handle: (event: NoInfer<E>, record: RecordInfo) => Effect.Effect<void, Err, R> }
): Handler<E, Err, R, A> => {
  const { decoders, name, version } = defined<E>("make", options)
  if (typeof options.handle !== "function") throw new Error(`Projection.make (${JSON.stringify(name)}): handle must be a function`)
  return { _tag: "Handler", name, version, options, decoders, handle: options.handle }
}

/**
 * Defines a projection that folds the events of the chosen aggregates into one state.
 *
 * ```ts
 * const balances = Projection.fold({
 *   name: "balances",
 *   aggregates: [Account],
 *   state: Schema.Record(Schema.String, Schema.Finite),
 *   initial: {},
 *   evolve: (state, event, record) => ({ ...state, [record.stream.id]: (state[record.stream.id] ?? 0) + amountOf(event) })
 * })
 * ```
 *
 * Throws on a bad name, version, source list or snapshot policy.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fold = <S, E, StateSchema extends Schema.Codec<S, unknown> = Schema.Codec<S, unknown>, A extends boolean = false>(
  options: CommonOptions<A> & Sources<E> & {
    readonly state: StateSchema & Schema.Codec<S, unknown>
    readonly initial: NoInfer<S>
    readonly evolve: (state: NoInfer<S>, event: NoInfer<E>, record: RecordInfo) => NoInfer<S>
    readonly snapshot?: { readonly everyRecords?: number | undefined; readonly schemaVersion?: number | undefined } | undefined
  }
): Folded<S, E, A> => {
  const { decoders, name, version } = defined<E>("fold", options)
  const everyRecords = options.snapshot?.everyRecords ?? DEFAULT_EVERY_RECORDS
  const schemaVersion = options.snapshot?.schemaVersion ?? 1
  const problem = (typeof options.evolve !== "function" ? "evolve must be a function" : undefined) ??
    integerProblem("snapshot.everyRecords", everyRecords, 1) ?? integerProblem("snapshot.schemaVersion", schemaVersion, 0)
  if (problem !== undefined) throw new Error(`Projection.fold (${JSON.stringify(name)}): ${problem}`)
  return {
    _tag: "Fold",
    name,
    version,
    options,
    decoders,
    stateCodec: Codec.make(options.state),
    initial: options.initial,
    evolve: options.evolve,
    everyRecords,
    schemaVersion
  }
}

/**
 * The subscription name a projection runs under: `name@version`, and `#replica` for a fold replica.
 *
 * @since 0.1.0
 * @category accessors
 */
export const subscriptionName = (projection: { readonly name: string; readonly version: number }, replica?: string): string =>
  `${projection.name}@${projection.version}${replica === undefined ? "" : `#${replica}`}`

/**
 * Options of `run`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /**
   * A fold replica's name: each replica folds the log on its own, with its own cursor and saved
   * state (`name@version#replica`), and serves reads from its own memory. Without one, the fold runs
   * one active instance per name, as any subscription.
   */
  readonly replica?: string | undefined
  /**
   * A fold exports its state to a `directory` or an `artifacts` store (see `ExportOptions`) every
   * `everyMs` milliseconds while it is active: round `floor(now / everyMs)`, so replicas export each
   * round once between them (see `exportState`).
   * A failed export is logged and tried again the next round.
   */
  readonly exports?: (ArtifactStore.Location & { readonly everyMs: number }) | undefined
}

/** What running a projection needs. */
type Needs<P> = P extends Handler<infer _E, infer _Err, infer R, infer A> ? Requirements<R, A>
  : P extends Folded<infer _S, infer _E, infer A> ? Requirements<never, A> | SnapshotStore
  : never

/**
 * Starts a projection in a background fiber of the current scope (stopped, with a last commit, when
 * the scope closes) and returns its handle; for a fold, one that also reads the state.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run: {
  <S, E, A extends boolean>(projection: Folded<S, E, A>, options?: RunOptions): Effect.Effect<RunningFold<S>, SubscriptionError | ProjectionError, Scope.Scope | Needs<Folded<S, E, A>>>
  <E, Err, R, A extends boolean>(projection: Handler<E, Err, R, A>): Effect.Effect<Running, SubscriptionError | ProjectionError, Scope.Scope | Needs<Handler<E, Err, R, A>>>
} = (projection: Handler<any, any, any, boolean> | Folded<any, any, boolean>, options?: RunOptions): Effect.Effect<any, any, any> =>
  projection._tag === "Handler" ? runHandler(projection) : runFold(projection, options)

/** The subscription options a projection's own options give. */
const subscriptionOptions = <A extends boolean>(name: string, options: CommonOptions<A>) => ({
  name,
  batch: options.batch,
  retry: options.retry,
  lease: options.lease,
  archive: options.archive
})

/** The decoded event, or its CodecError marked as a failure no retry can fix. */
const permanent = <E>(decoded: Result.Result<E, Codec.CodecError>): Effect.Effect<E, Codec.CodecError> =>
  Result.isSuccess(decoded) ? Effect.succeed(decoded.success) : Effect.fail(Object.assign(decoded.failure, { [Permanent]: true }))

const runHandler = <E, Err, R, A extends boolean>(projection: Handler<E, Err, R, A>) =>
  start(
    {
      ...subscriptionOptions(subscriptionName(projection), projection.options),
      namespaces: Array.from(projection.decoders.keys()),
      handle: (records: ReadonlyArray<JournalRecord>) =>
        Effect.forEach(records, (record) =>
          Effect.flatMap(permanent(decode(projection.decoders, record)), (event) =>
            event === undefined ? Effect.void : projection.handle(event, recordInfo(record))), { discard: true })
    },
    undefined,
    (fields) => new SubscriptionError(fields)
  )

const runFold = <S, E, A extends boolean>(projection: Folded<S, E, A>, options: RunOptions | undefined) =>
  Effect.gen(function*() {
    const id = subscriptionName(projection, options?.replica)
    const problem = (options?.replica === undefined ? undefined : nameProblem("replica", options.replica)) ??
      (options?.exports === undefined ? undefined : integerProblem("exports.everyMs", options.exports.everyMs, 1))
    if (problem !== undefined) return yield* fail(id, "fold", `Projection.run (${JSON.stringify(id)}): ${problem}`)
    const runtime = Fold.make({ ...projection, id }, { journal: yield* Journal, snapshots: yield* SnapshotStore })
    const cursors = yield* CursorStore
    const subscription = yield* start(
      { ...subscriptionOptions(id, projection.options), handle: runtime.handle },
      runtime.keeper,
      (fields) => new SubscriptionError(fields)
    )
    const exportState = (request: ExportOptions) =>
      Effect.flatMap(subscription.status, (status) =>
        status.state !== "active"
          ? Effect.succeedNone
          : Exports.exportState(projection, { location: request, round: request.round, owner: subscription.owner, point: runtime.point }, cursors, failure(id))).pipe(
          Effect.catchTag("SubscriptionError", (error) => Effect.fail(fail(id, "export", `Cannot export ${id}: ${error.message}`, error)))
        )
    const exports = options?.exports
    if (exports !== undefined) yield* Effect.forkScoped(Exports.everyRound(exports.everyMs, (round) => exportState({ ...exports, round })))
    return {
      ...subscription,
      get: Effect.sync(() => runtime.point().state),
      point: Effect.sync(runtime.point),
      exportState
    } satisfies RunningFold<S>
  })

const failure = (projection: string): Exports.Failure<ProjectionError> => (method, message, cause) => fail(projection, method, message, cause)

/**
 * Imports the newest artifact of a fold in a `directory` or an `artifacts` store (as `ExportOptions`
 * name them) into a replica (default: the fold without a replica name) before it runs: verifies the
 * manifest and every file's checksum, stores the state as the replica's saved state at the
 * artifact's cursor and commits its cursor there, so that `run` follows the log from the cursor
 * instead of replaying it. `Option.none()` when there is
 * no artifact or the replica is already at or past it. Fails with a `ProjectionError` naming the
 * file on a damaged artifact, and while an instance of the replica runs.
 *
 * @since 0.1.0
 * @category operations
 */
export const importLatest = <S, E, A extends boolean>(
  projection: Folded<S, E, A>,
  options: ArtifactStore.Location & { readonly replica?: string | undefined }
): Effect.Effect<Option.Option<Manifest>, ProjectionError, CursorStore | SnapshotStore> =>
  Effect.gen(function*() {
    const id = subscriptionName(projection, options.replica)
    const owner = `import/${Math.random().toString(36).slice(2, 10)}`
    const services = { cursors: yield* CursorStore, snapshots: yield* SnapshotStore }
    return yield* Exports.importLatest(projection, { location: options, id, owner }, services, failure(id))
  })

/**
 * Clears a projection version for an in-place rebuild: removes its cursor and (for a fold) its saved
 * state, so that the next `run` starts from the beginning of the log. Fails with a `ProjectionError`
 * while an instance runs (it holds the name's lease).
 *
 * @since 0.1.0
 * @category operations
 */
export const reset = (
  projection: Handler<any, any, any, boolean> | Folded<any, any, boolean>,
  options?: RunOptions
): Effect.Effect<void, ProjectionError, CursorStore | SnapshotStore> =>
  Effect.gen(function*() {
    const name = subscriptionName(projection, options?.replica)
    const cursors = yield* CursorStore
    const snapshots = yield* SnapshotStore
    const owner = `reset/${Math.random().toString(36).slice(2, 10)}`
    const failed = (cause: { readonly message: string }) => fail(name, "reset", `Projection.reset (${JSON.stringify(name)}): ${cause.message}`, cause)
    yield* Effect.mapError(cursors.acquire(name, owner, 60_000), failed)
    yield* Effect.ensuring(
      Effect.mapError(Effect.andThen(snapshots.delete(Fold.FOLD_NAMESPACE, name), cursors.delete(name)), failed),
      Effect.ignore(cursors.release(name, owner))
    )
  })
