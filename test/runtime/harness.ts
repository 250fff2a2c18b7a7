/**
 * The runtime suites' harness: a case is written once against a `Storage` and registered by
 * `register` over every combination of `layers.ts`, and helpers shared by the suites.
 */
import { Effect, Exit, References, type Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import type { Archive, Journal } from "../../src/index.ts"
import { squash } from "../conformance/harness.ts"
import { type Combination, combinations, type Storage, type StorageOptions } from "./layers.ts"

/** One runtime case. */
export interface Case {
  readonly name: string
  /** Options of the storage opened for the case. */
  readonly storage?: StorageOptions
  /**
   * Run on the real clock, for background fibers that must run by themselves (a TestClock never
   * advances on its own). Default: under a TestClock starting at 0.
   */
  readonly live?: boolean
  readonly run: (storage: Storage, combination: Combination) => Effect.Effect<void, unknown, Scope.Scope>
}

/** Runs one case over one combination; warnings (retried uploads, failed background checkpoints) are not printed. */
export const runCase = (combination: Combination, testCase: Case): Promise<Exit.Exit<void, unknown>> => {
  const body = Effect.gen(function*() {
    const storage = yield* combination.open(testCase.storage ?? {})
    yield* testCase.run(storage, combination)
  }).pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Error"))
  return Effect.runPromiseExit(testCase.live === true ? body : Effect.provide(body, TestClock.layer()))
}

/** Registers every case of a suite over every storage combination as `node:test` tests. */
export const register = (suite: string, cases: ReadonlyArray<Case>): void => {
  for (const combination of combinations) {
    for (const testCase of cases) {
      test(`${suite} [${combination.name}] ${testCase.name}`, async () => {
        const exit = await runCase(combination, testCase)
        if (Exit.isFailure(exit)) throw squash(exit)
      })
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/**
 * Waits on the real clock (also under a TestClock) until `condition` holds, polling every
 * millisecond for at most `seconds`; fails the test with `what` otherwise.
 */
export const eventually = <E, R>(what: string, condition: Effect.Effect<boolean, E, R>, seconds = 10) =>
  Effect.gen(function*() {
    for (let i = 0; i < seconds * 1_000; i++) {
      if (yield* condition) return
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
    }
    assert.fail(`timed out after ${seconds} s waiting until ${what}`)
  })

/** Every record the journal holds, in seq order. */
export const replayAll = (journal: Journal.Journal) => Stream.runCollect(journal.replayFrom(0))

/** A hand-made record of stream ledger/x at version `seq` (for archives and restores built by hand). */
export const ledgerRecord = (seq: number): Journal.JournalRecord => ({
  seq,
  namespace: "ledger",
  id: "x",
  version: seq,
  type: "Credited",
  timestamp: seq,
  payload: new Uint8Array([seq])
})

/** A record's fields as plain data, so records compare field by field (payload as bytes). */
export const plain = (r: Journal.JournalRecord) => ({
  seq: r.seq,
  namespace: r.namespace,
  id: r.id,
  version: r.version,
  type: r.type,
  timestamp: r.timestamp,
  payload: Array.from(r.payload),
  metadata: r.metadata === undefined ? null : { ...r.metadata }
})

/** Asserts that two lists of records are the same, seq by seq and field by field. */
export const assertSameRecords = (
  actual: ReadonlyArray<Journal.JournalRecord>,
  expected: ReadonlyArray<Journal.JournalRecord>,
  what: string
) => {
  assert.deepEqual(actual.map((r) => r.seq), expected.map((r) => r.seq), `${what}: seqs`)
  assert.deepEqual(actual.map(plain), expected.map(plain), `${what}: records field by field`)
}

/**
 * Reads the whole archive, asserting that its segments chain without holes from seq 1: each
 * starts at the seq after the previous one's end, holds only seqs of its range in order, and ends
 * at its last record. Returns every archived record and the last archived seq.
 */
export const readArchive = (archive: Archive.Archive) =>
  Effect.gen(function*() {
    const refs = yield* archive.list()
    const records: Array<Journal.JournalRecord> = []
    let next = 1
    for (const ref of refs) {
      assert.equal(ref.startSeq, next, `segment ${ref.key} starts right after the previous one (seq ${next})`)
      const segment = yield* archive.get(ref)
      assert.ok(segment.length > 0, `segment ${ref.key} is not empty`)
      let previous = ref.startSeq - 1
      for (const record of segment) {
        assert.ok(record.seq > previous && record.seq <= ref.endSeq, `segment ${ref.key} holds seq ${record.seq} in order`)
        previous = record.seq
      }
      assert.equal(segment[segment.length - 1]!.seq, ref.endSeq, `segment ${ref.key} ends at its last record`)
      records.push(...segment)
      next = ref.endSeq + 1
    }
    return { refs, records, through: next - 1 }
  })
