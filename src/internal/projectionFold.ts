/**
 * The state of a running fold (see `Projection.fold`): folded in memory record by record, saved to
 * the SnapshotStore at the seq it is at, restored from there at the start of each term. It is the
 * subscription's keeper: a commit never covers a record whose effect on the state is not saved, so a
 * restart resumes exactly where the saved state is — each record folded once into what is kept.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type { Journal, JournalRecord } from "../Journal.ts"
import type { Folded } from "../Projection.ts"
import type { SnapshotStore, SnapshotStoreError } from "../SnapshotStore.ts"
import { decode, recordInfo } from "./projectionSources.ts"
import { Permanent } from "./subscriptionBatches.ts"
import type { Keeper } from "./subscriptionInstance.ts"

/** The namespace of the snapshots folds keep (their id is the subscription's name). @internal */
export const FOLD_NAMESPACE = "annals.projection"

/** What a fold is made of, with every default filled in. @internal */
export type FoldSpec<S, E> = Pick<Folded<S, E, boolean>, "decoders" | "stateCodec" | "initial" | "evolve" | "everyRecords" | "schemaVersion"> & {
  /** The subscription's name, also the id of its snapshot. */
  readonly id: string
}

/** Where a fold stands: its state and the last record folded into it (0: none). @internal */
export interface FoldPoint<S> {
  readonly state: S
  readonly seq: number
  readonly timestamp: number
}

/** Why a fold cannot go on: a record does not decode, `evolve` threw, the state does not encode. @internal */
export interface FoldFailure {
  /** Deterministic: trying again gives the same failure. */
  readonly [Permanent]: true
  readonly method: "decode" | "evolve" | "encode"
  readonly message: string
  readonly seq: number
  readonly cause: unknown
}

/** A fold's runtime: the subscription handler, its keeper, and the state it is at. @internal */
export interface FoldRuntime<S> {
  readonly handle: (records: ReadonlyArray<JournalRecord>) => Effect.Effect<void, FoldFailure | unknown>
  readonly keeper: Keeper<never>
  /** The state and the seq it is at, read in one step (so they always agree). */
  readonly point: () => FoldPoint<S>
}

/** Makes the runtime of one fold instance. @internal */
export const make = <S, E>(spec: FoldSpec<S, E>, services: { readonly journal: Journal; readonly snapshots: SnapshotStore }): FoldRuntime<S> => {
  const { journal, snapshots } = services
  let state = spec.initial
  /** Every record up to this seq went through the fold (folded, or not of its namespaces). */
  let folded = 0
  let foldedAt = 0
  /** The seq of the state last saved. */
  let saved = 0
  /** Records folded into the state since it was saved. */
  let unsaved = 0
  /** How long the last save took, and when it ended (performance.now(): a cost, not a point in time). */
  let lastSaveMs = 0
  let lastSaveEnded = 0

  const restart = (to: FoldPoint<S>) => {
    state = to.state
    folded = saved = to.seq
    foldedAt = to.timestamp
    unsaved = 0
  }

  /** Restores the saved state; returns the seq to resume after (see the module doc for why past a higher cursor is safe). */
  const start = (cursor: number | undefined): Effect.Effect<number, unknown> =>
    Effect.gen(function*() {
      restart({ state: spec.initial, seq: 0, timestamp: 0 })
      const stored = yield* snapshots.get(FOLD_NAMESPACE, spec.id)
      const snapshot = Option.getOrUndefined(stored)
      if (snapshot !== undefined && snapshot.schemaVersion === spec.schemaVersion) {
        const decoded = spec.stateCodec.decode(snapshot.state)
        if (Result.isSuccess(decoded)) {
          restart({ state: decoded.success, seq: snapshot.seq, timestamp: snapshot.timestamp })
          // The records between the saved state and a higher cursor changed nothing (a commit past
          // the saved state happens only then): resume after the cursor.
          if (cursor !== undefined && cursor > folded) folded = cursor
          return folded
        }
        yield* Effect.logWarning(`Projection ${JSON.stringify(spec.id)}: its saved state at seq ${snapshot.seq} does not decode; rebuilding from the start of the log`)
      } else if (snapshot !== undefined) {
        yield* Effect.logWarning(
          `Projection ${JSON.stringify(spec.id)}: its saved state has schemaVersion ${snapshot.schemaVersion}, not ${spec.schemaVersion}; rebuilding from the start of the log`
        )
      } else if (cursor !== undefined && cursor > 0) {
        yield* Effect.logWarning(`Projection ${JSON.stringify(spec.id)}: no saved state while its cursor is at seq ${cursor}; rebuilding from the start of the log`)
      }
      return 0
    })

  /** Folds the records not folded yet (a retried batch skips what the failed try folded). */
  const foldAll = (records: ReadonlyArray<JournalRecord>): FoldFailure | undefined => {
    for (const record of records) {
      if (record.seq <= folded) continue
      const event = decode(spec.decoders, record)
      if (Result.isFailure(event)) return { [Permanent]: true, method: "decode", message: event.failure.message, seq: record.seq, cause: event.failure }
      if (event.success !== undefined) {
        try {
          state = spec.evolve(state, event.success, recordInfo(record))
        } catch (cause) {
          const what = `${record.namespace}/${record.id} version ${record.version} (seq ${record.seq}, ${record.type})`
          return { [Permanent]: true, method: "evolve", message: `evolve threw on ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, seq: record.seq, cause }
        }
        unsaved++
      }
      folded = record.seq
      foldedAt = record.timestamp
    }
    return undefined
  }

  const save = Effect.suspend((): Effect.Effect<void, FoldFailure | SnapshotStoreError> => {
    const started = performance.now()
    const at = { seq: folded, timestamp: foldedAt }
    const bytes = spec.stateCodec.encode(state)
    if (Result.isFailure(bytes)) {
      const failure: FoldFailure = { [Permanent]: true, method: "encode", message: `its state at seq ${at.seq} does not encode`, seq: at.seq, cause: bytes.failure }
      return Effect.fail(failure)
    }
    return Effect.map(
      snapshots.put({
        namespace: FOLD_NAMESPACE,
        id: spec.id,
        version: at.seq,
        seq: at.seq,
        timestamp: at.timestamp,
        schemaVersion: spec.schemaVersion,
        state: bytes.success
      }),
      () => {
        lastSaveEnded = performance.now()
        lastSaveMs = lastSaveEnded - started
        saved = at.seq
        // Records folded while the put ran (none: the handler waits for it) would stay unsaved.
        if (folded === at.seq) unsaved = 0
      }
    )
  })

  const handle = (records: ReadonlyArray<JournalRecord>): Effect.Effect<void, FoldFailure | unknown> =>
    Effect.gen(function*() {
      const failure = foldAll(records)
      if (failure !== undefined) return yield* Effect.fail(failure)
      if (unsaved === 0) return
      // Saved whenever the fold has reached the end of the log (so that a caught-up fold's cursor,
      // which waits for the save, reaches the end too), and on the way after `everyRecords` folded
      // records — but no sooner than nine times the last save's duration after it: a large state,
      // whose save takes long, is saved less often, so saving costs at most a tenth of a catch-up.
      const due = unsaved >= spec.everyRecords && performance.now() - lastSaveEnded >= 9 * lastSaveMs
      if (due || folded >= (yield* journal.lastSeq)) yield* save
    })

  return {
    handle,
    keeper: { start, kept: () => unsaved === 0 ? Number.POSITIVE_INFINITY : saved },
    point: () => ({ state, seq: folded, timestamp: foldedAt })
  }
}
