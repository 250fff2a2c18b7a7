/**
 * The Repository of one aggregate: loads its state (latest snapshot + the later records folded
 * through `evolve`), executes commands with optimistic concurrency, saves snapshots on the
 * aggregate's policy, and rebuilds the state as of a past timestamp.
 *
 * Snapshots and the in-process cache are speed-ups only: `load` always returns exactly the fold of
 * all the stream's events from `initial` (or of those with timestamp ≤ `asOf`). When the records a
 * fold needs are no longer in the journal and no snapshot covers them, they are read from the
 * Archive; without one, `load` fails with `HistoryTruncated` — never a partial state. A snapshot (or
 * cached state) is used only when the journal agrees with it: its version is not above the stream's,
 * and the journal's record at its version carries its seq (or was truncated). One that is not — after
 * a point-in-time restore, a tail lost under `"interval"`/`"os"`, or from another timeline — is
 * ignored with a logged warning and the state is rebuilt from the journal (and archive).
 *
 * Every record `execute` appends carries its command id in the metadata key `"annals.commandId"`
 * (`CommandIdKey`), so that a command whose append committed although it was reported as failed (or
 * was interrupted) is never applied twice: see `ExecuteOptions.commandId`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import * as SecureRandom from "effect/crypto/SecureRandom"
import type * as Aggregate from "./Aggregate.ts"
import { Archive, type ArchiveError } from "./Archive.ts"
import * as Codec from "./Codec.ts"
import type { TaggedErrorClass } from "./internal/errors.ts"
import { spanOptions, streamAttributes, traced } from "./internal/observe.ts"
import { type Folded, Lru, makeRehydrator } from "./internal/rehydrate.ts"
import { integerProblem, unpairedSurrogate } from "./internal/validate.ts"
import { Journal, type JournalError, type StreamRef, type VersionConflict } from "./Journal.ts"
import * as Metrics from "./Metrics.ts"
import { SnapshotStore, type SnapshotStoreError } from "./SnapshotStore.ts"

/**
 * The fields of a `HistoryTruncated` error.
 *
 * @since 0.1.0
 * @category errors
 */
export interface HistoryTruncatedFields {
  readonly stream: StreamRef
  /** The first version that could not be found. */
  readonly fromVersion: number
  /** The last version that could not be found. */
  readonly toVersion: number
  /** Why: no archive configured, or the archive does not hold them. */
  readonly detail: string
}

const HistoryTruncatedBase: TaggedErrorClass<"HistoryTruncated", HistoryTruncatedFields> = Data.TaggedError(
  "HistoryTruncated"
)

/**
 * The records a load needs are gone from the journal, no snapshot covers them, and the archive
 * cannot supply them.
 *
 * @since 0.1.0
 * @category errors
 */
export class HistoryTruncated extends HistoryTruncatedBase {
  override get message(): string {
    return `The history of stream ${this.stream.namespace}/${this.stream.id} is truncated: versions ` +
      `${this.fromVersion}..${this.toVersion} are no longer in the journal and no snapshot covers them; ${this.detail}`
  }
}

/**
 * The fields of a `RepositoryError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface RepositoryErrorFields {
  /** The operation that was called, e.g. `"load"`. */
  readonly method: string
  /** What is wrong and where (the argument and the stream). */
  readonly message: string
  readonly stream?: StreamRef | undefined
}

const RepositoryErrorBase: TaggedErrorClass<"RepositoryError", RepositoryErrorFields> = Data.TaggedError(
  "RepositoryError"
)

/**
 * A Repository operation was called with an invalid argument (an `asOf` that is not a timestamp, an
 * empty `commandId`); `message` names the argument and the stream.
 *
 * @since 0.1.0
 * @category errors
 */
export class RepositoryError extends RepositoryErrorBase {}

/**
 * What `load` can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type LoadError =
  | JournalError
  | SnapshotStoreError
  | ArchiveError
  | Codec.CodecError
  | HistoryTruncated
  | RepositoryError

/**
 * The metadata key under which `execute` stores its command id on every record it appends. Keys
 * starting with `"annals."` are reserved for annals.
 *
 * @since 0.1.0
 * @category metadata
 */
export const CommandIdKey = "annals.commandId"

/**
 * A loaded state and the version of the newest event folded into it (0: no events).
 *
 * @since 0.1.0
 * @category models
 */
export interface Loaded<S> {
  readonly state: S
  readonly version: number
}

/**
 * The outcome of `execute`: the new state and version, and the events appended (none if the
 * command decided on none).
 *
 * @since 0.1.0
 * @category models
 */
export interface Executed<E, S> extends Loaded<S> {
  readonly events: ReadonlyArray<E>
}

/**
 * Options of `load`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadOptions {
  /** Rebuild the state from exactly the events with timestamp ≤ `asOf` (epoch ms, a safe integer ≥ 0). */
  readonly asOf?: number | undefined
}

/**
 * Options of `execute`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecuteOptions {
  /**
   * Identifies the command across the caller's own retries (after an interruption, a timeout or a
   * `JournalError`, when it cannot know whether the append committed): before running the command,
   * `execute` looks for this id among the stream's newest `commandIdWindow` records and, if it finds
   * it, returns that earlier outcome instead of applying the command again. Without it, each call
   * gets a fresh id, which protects only the retries inside this call.
   */
  readonly commandId?: string | undefined
}

/**
 * Options of a Repository.
 *
 * @since 0.1.0
 * @category models
 */
export interface RepositoryOptions {
  /** Reloads and retries after a `VersionConflict` before failing with it (default 3). */
  readonly maxRetries?: number | undefined
  /** States kept in the in-process LRU cache (default 1,000; 0 disables it). */
  readonly cacheSize?: number | undefined
  /** How many of a stream's newest records a caller-supplied `commandId` is looked for in (default 100). */
  readonly commandIdWindow?: number | undefined
}

/**
 * The Repository of one aggregate.
 *
 * @since 0.1.0
 * @category models
 */
export interface Repository<E extends { readonly _tag: string }, S> {
  readonly aggregate: Aggregate.Aggregate<E, S>
  /** The current state, or the state as of `options.asOf`. */
  readonly load: (id: string, options?: LoadOptions) => Effect.Effect<Loaded<S>, LoadError>
  /**
   * Loads, runs the command and appends its events expecting the loaded version, every record
   * tagged with the command id (metadata `CommandIdKey`). On a conflict it waits (up to 5 seconds)
   * until the conflicting version is visible, returns the earlier outcome if the stream holds this
   * command id after the version it expected (an append that committed although it failed), else
   * reloads and retries, up to `maxRetries` times, then fails with the `VersionConflict`.
   * Other failures of the append are returned as they are: retry them with the same `commandId`.
   * When an earlier outcome is returned, `state` and `version` are those right after its events.
   */
  readonly execute: <Err, R>(
    id: string,
    command: Aggregate.Command<S, E, Err, R>,
    options?: ExecuteOptions
  ) => Effect.Effect<Executed<E, S>, LoadError | VersionConflict | Err, R>
  /**
   * Saves a snapshot of the stream's current state unless one at that version exists; returns the
   * version and seq of the newest record it covers, and whether it wrote one (used by the
   * Checkpointer before truncating).
   */
  readonly snapshot: (
    id: string
  ) => Effect.Effect<{ readonly version: number; readonly seq: number; readonly saved: boolean }, LoadError>
}

/** How long `execute` waits for a conflicting version to become visible before it retries anyway. */
const VISIBILITY_WAIT_MS = 5_000

/**
 * Sleeps on the live clock, whatever Clock the caller provides: waiting for an append in flight is
 * waiting for real I/O (an fdatasync), which a TestClock would never let finish.
 */
const sleepLive = (millis: number) => Effect.provideService(Effect.sleep(millis), Clock.Clock, Clock.Clock.defaultValue())

/**
 * Builds the Repository of `aggregate` over the Journal and SnapshotStore in context; an Archive,
 * when one is provided, serves loads that reach behind the journal's truncation point.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E extends { readonly _tag: string }, S>(
  aggregate: Aggregate.Aggregate<E, S>,
  options?: RepositoryOptions
): Effect.Effect<Repository<E, S>, never, Journal | SnapshotStore> =>
  Effect.gen(function*() {
    const maxRetries = options?.maxRetries ?? 3
    const cacheSize = options?.cacheSize ?? 1_000
    const commandIdWindow = options?.commandIdWindow ?? 100
    const problem = integerProblem("maxRetries", maxRetries, 0) ?? integerProblem("cacheSize", cacheSize, 0) ??
      integerProblem("commandIdWindow", commandIdWindow, 0)
    if (problem !== undefined) return yield* Effect.die(new Error(`Repository.make(${aggregate.namespace}): ${problem}`))
    const journal = yield* Journal
    const snapshots = yield* SnapshotStore
    const archive = yield* Effect.serviceOption(Archive)
    const cache = new Lru<Folded<S>>(cacheSize)
    const { rebuild } = makeRehydrator({
      aggregate,
      replayed: Metric.withAttributes(Metrics.recordsReplayed, { namespace: aggregate.namespace }),
      journal,
      snapshots,
      archive,
      cache,
      truncated: (stream, fromVersion, toVersion, detail) => new HistoryTruncated({ stream, fromVersion, toVersion, detail })
    })
    const streamOf = (id: string): StreamRef => ({ namespace: aggregate.namespace, id })
    const tagged = { namespace: aggregate.namespace }
    const conflicts = Metric.withAttributes(Metrics.conflicts, tagged)
    const retries = Metric.withAttributes(Metrics.retries, tagged)
    /** The span of a public operation on stream `id` (when a tracer is installed); `annals.version` is set from its result. */
    const inSpan = (method: string, id: string) => <A extends { readonly version: number }, Err, R>(effect: Effect.Effect<A, Err, R>) =>
      traced(effect, `annals.Repository.${method}`, () => spanOptions(streamAttributes(streamOf(id))), (result) => ({
        "annals.version": result.version
      }))
    // Fresh command ids: a random prefix per Repository and a counter, unique without a random draw per command.
    const commandIdPrefix = SecureRandom.uuidV4Unsafe()
    let commandCount = 0
    const invalid = (method: string, stream: StreamRef, problem: string) =>
      new RepositoryError({ method, stream, message: `Repository.${method} of stream ${stream.namespace}/${stream.id}: ${problem}` })

    const saveSnapshot = (stream: StreamRef, folded: Folded<S>) =>
      Effect.gen(function*() {
        const state = Codec.encodeState(aggregate.stateCodec, stream, folded.version, folded.state)
        if (Result.isFailure(state)) return yield* state.failure
        yield* snapshots.put({
          namespace: stream.namespace,
          id: stream.id,
          version: folded.version,
          seq: folded.seq,
          timestamp: folded.timestamp,
          schemaVersion: aggregate.schemaVersion,
          state: state.success
        })
      })

    /** Waits, bounded, until the stream's visible version reaches `version` (an append in flight). */
    const awaitVisible = (stream: StreamRef, version: number) =>
      Effect.gen(function*() {
        for (let waited = 0, delay = 1; (yield* journal.version(stream)) < version && waited < VISIBILITY_WAIT_MS;) {
          yield* sleepLive(delay)
          waited += delay
          delay = Math.min(delay * 2, 50)
        }
      })

    /**
     * The outcome of the command `commandId` if the stream's records from version `from` on carry
     * it: its events, and the state and version right after them.
     */
    const findCommand = (stream: StreamRef, commandId: string, from: number) =>
      Effect.gen(function*() {
        const records = yield* Stream.runCollect(journal.read(stream, { from: Math.max(1, from) }))
        const mine = records.filter((record) => record.metadata?.[CommandIdKey] === commandId)
        if (mine.length === 0) return Option.none<Executed<E, S>>()
        const events: Array<E> = []
        for (const record of mine) {
          const event = Codec.decodeRecord(aggregate.eventCodec, record)
          if (Result.isFailure(event)) return yield* event.failure
          events.push(event.success)
        }
        const { state, version } = yield* rebuild(stream.id, { toVersion: mine[mine.length - 1]!.version })
        return Option.some<Executed<E, S>>({ state, version, events })
      })

    const execute: Repository<E, S>["execute"] = (id, command, executeOptions) =>
      inSpan("execute", id)(Effect.gen(function*() {
        const stream = streamOf(id)
        const supplied = executeOptions?.commandId
        if (supplied !== undefined) {
          const problem = typeof supplied !== "string" || supplied.length === 0 || supplied.length > 256
            ? `commandId must be a string of 1 to 256 characters, got ${JSON.stringify(supplied)}`
            : unpairedSurrogate("commandId", supplied)
          if (problem !== undefined) return yield* invalid("execute", stream, problem)
          if (commandIdWindow > 0) {
            const current = yield* journal.version(stream)
            const earlier = yield* findCommand(stream, supplied, current - commandIdWindow + 1)
            if (Option.isSome(earlier)) return earlier.value
          }
        }
        const metadata = { [CommandIdKey]: supplied ?? `${commandIdPrefix}.${++commandCount}` }
        for (let attempt = 0;; attempt++) {
          const base = yield* rebuild(id, {})
          const events = yield* command(base.state)
          if (events.length === 0) return { state: base.state, version: base.version, events: [] }
          const data = yield* Codec.encodeEvents(aggregate.eventCodec, stream, events)
          const appended = yield* Effect.result(journal.append(stream, base.version, data.map((d) => ({ ...d, metadata }))))
          if (Result.isFailure(appended)) {
            cache.delete(id)
            const failure = appended.failure
            if (failure._tag !== "VersionConflict") return yield* failure
            yield* Metric.update(conflicts, 1)
            // The conflicting append may still be in flight: wait until it is visible, then see
            // whether it is this command's own (an append that committed although it failed).
            yield* awaitVisible(stream, failure.actual)
            const done = yield* findCommand(stream, metadata[CommandIdKey], base.version + 1)
            if (Option.isSome(done)) return done.value
            if (attempt < maxRetries) {
              yield* Metric.update(retries, 1)
              yield* Effect.annotateCurrentSpan("annals.retries", attempt + 1)
              continue
            }
            return yield* failure
          }
          let state = base.state
          for (const event of events) state = aggregate.evolve(state, event)
          let folded: Folded<S> = {
            state,
            version: appended.success.version,
            seq: appended.success.lastSeq,
            timestamp: appended.success.timestamp,
            snapshotVersion: base.snapshotVersion
          }
          const policy = aggregate.snapshot
          if (policy !== undefined && folded.version - folded.snapshotVersion >= policy.every) {
            // A snapshot is a speed-up: failing to save one never fails the command.
            const saved = yield* Effect.result(saveSnapshot(stream, folded))
            if (Result.isSuccess(saved)) folded = { ...folded, snapshotVersion: folded.version }
            else yield* Effect.logWarning(`Snapshot of ${stream.namespace}/${id} at version ${folded.version} not saved: ${saved.failure.message}`)
          }
          cache.set(id, folded)
          return { state, version: folded.version, events }
        }
      }))

    const snapshot: Repository<E, S>["snapshot"] = (id) =>
      Effect.gen(function*() {
        const stream = streamOf(id)
        const folded = yield* rebuild(id, {})
        const saved = folded.version > folded.snapshotVersion
        if (saved) {
          yield* saveSnapshot(stream, folded)
          // A snapshot above the journal's version (ignored by loads) would make the store drop this
          // one as its oldest: remove the stream's snapshots and save this one alone.
          const latest = yield* snapshots.get(stream.namespace, stream.id)
          if (Option.isSome(latest) && latest.value.version > folded.version && latest.value.version > (yield* journal.version(stream))) {
            yield* snapshots.delete(stream.namespace, stream.id)
            yield* saveSnapshot(stream, folded)
          }
          cache.set(id, { ...folded, snapshotVersion: folded.version })
        }
        return { version: folded.version, seq: folded.seq, saved }
      })

    return {
      aggregate,
      load: (id, loadOptions) =>
        inSpan("load", id)(Effect.gen(function*() {
          const asOf = loadOptions?.asOf
          const problem = asOf === undefined ? undefined : integerProblem("asOf", asOf, 0)
          if (problem !== undefined) return yield* invalid("load", streamOf(id), problem)
          const { state, version } = yield* rebuild(id, { asOf })
          return { state, version }
        })),
      execute,
      snapshot
    }
  })
