/**
 * Adversarial cases of the Subscription runtime (DESIGN §6) found in review: each one failed
 * before the fix committed with it. Memory layers under a TestClock: deterministic and fast.
 */
import { Clock, Effect, Layer, Option, References, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Archive, CursorStore, Journal, Subscription } from "../src/index.ts"
import { expectError } from "./conformance/harness.ts"

const event = { type: "E", payload: new Uint8Array([1]) }
const memory = Layer.mergeAll(Journal.layerMemory, CursorStore.layerMemory, Archive.layerMemory())

/** Runs `body` over a memory Journal, CursorStore and Archive under a TestClock starting at 0; the stops and retries it provokes are not logged. */
const run = (body: Effect.Effect<void, unknown, Scope.Scope | Journal.Journal | CursorStore.CursorStore | Archive.Archive>) =>
  Effect.runPromise(
    body.pipe(Effect.scoped, Effect.provide(memory), Effect.provide(TestClock.layer()), Effect.provideService(References.MinimumLogLevel, "None"))
  )

/** Moves the TestClock on by `ms` in steps of `step` ms, letting fibers run after each step. */
const advance = (ms: number, step = 10) =>
  Effect.gen(function*() {
    for (let t = 0; t < ms; t += step) yield* TestClock.adjust(step)
  })

test("an instance whose renewals hang stops applying when its lease runs out, before another takes the name", () =>
  run(Effect.gen(function*() {
    const journal = yield* Journal.Journal
    const cursors = yield* CursorStore.CursorStore
    const spans: Array<{ owner: string; from: number; to: number }> = []
    let partitioned = false
    const instance = (owner: string, store: CursorStore.CursorStore) =>
      Subscription.make({
        name: "single",
        lease: { ttlMs: 300, owner },
        handle: () =>
          Effect.gen(function*() {
            const span = { owner, from: yield* Clock.currentTimeMillis, to: Number.POSITIVE_INFINITY }
            spans.push(span)
            yield* Effect.sleep(1_000).pipe(Effect.ensuring(Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => {
              span.to = now
            }))))
          })
      }).pipe(Effect.provideService(CursorStore.CursorStore, store))
    // A's link to the store hangs from some point on (a partition with no timeout): its renewals never return.
    const cut: CursorStore.CursorStore = {
      ...cursors,
      acquire: (name, owner, ttlMs) => partitioned ? Effect.never : cursors.acquire(name, owner, ttlMs),
      commit: (name, seq, lease) => partitioned ? Effect.never : cursors.commit(name, seq, lease)
    }
    yield* instance("A", cut)
    yield* advance(20)
    yield* instance("B", cursors)
    yield* advance(150)
    partitioned = true
    yield* journal.append({ namespace: "n", id: "x" }, "any", [event])
    yield* advance(2_500)
    partitioned = false
    const a = spans.filter((s) => s.owner === "A")
    const b = spans.filter((s) => s.owner === "B")
    assert.ok(a.length > 0 && b.length > 0, `A applied ${a.length} batches, B ${b.length}`)
    for (const x of a) {
      for (const y of b) {
        assert.ok(x.to <= y.from || y.to <= x.from, `A applied during [${x.from}, ${x.to}] while B applied during [${y.from}, ${y.to}]`)
      }
    }
  })))

test("bad options are a SubscriptionError from make, not a defect nor an instance waiting for ever", () =>
  run(Effect.gen(function*() {
    yield* TestClock.adjust(1_000)
    // Every acquire refuses this lease (it would end beyond MAX_SAFE_INTEGER): it used to stay "starting", logging retries.
    yield* expectError(
      Subscription.make({ name: "long", lease: { ttlMs: Number.MAX_SAFE_INTEGER }, handle: () => Effect.void }),
      "SubscriptionError",
      "long",
      "lease.ttlMs",
      "MAX_SAFE_INTEGER"
    )
    for (const options of [undefined, null]) {
      yield* expectError(Subscription.make(options as unknown as Subscription.SubscriptionOptions<never, never>), "SubscriptionError", "options must be an object")
    }
  })))

/** Waits for `effect` at most `ms` of real time (a TestClock does not move by itself): `None` when it did not finish. */
const withinRealTime = <A, E, R>(effect: Effect.Effect<A, E, R>, ms: number) =>
  Effect.raceFirst(Effect.asSome(effect), Effect.as(Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms))), Option.none<A>()))

/** Appends `count` events to ledger/x and returns the journal's records. */
const appendRecords = (journal: Journal.Journal, count: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) yield* journal.append({ namespace: "ledger", id: "x" }, "any", [event])
    return yield* Stream.runCollect(journal.replayFrom(0))
  })

/** A subscription reading the Archive that records the seqs it is given. */
const collecting = (name: string, seqs: Array<number>) =>
  Subscription.make({
    name,
    archive: true,
    handle: (records) => Effect.sync(() => records.forEach((record) => seqs.push(record.seq)))
  })

test("a segment whose range ends in a seq gap is read once, then the journal is followed (it looped for ever)", () =>
  run(Effect.gen(function*() {
    const journal = yield* Journal.Journal
    const archive = yield* Archive.Archive
    const append = journal.append({ namespace: "ledger", id: "x" }, "any", [event])
    // Seqs 9 and 10 are a gap the segment covers (legal: DESIGN §1, the Archive's module doc).
    yield* archive.put({ startSeq: 1, endSeq: 10, records: yield* appendRecords(journal, 8) })
    yield* journal.truncateBefore(11)
    yield* append
    const caughtUp = (name: string, expected: ReadonlyArray<number>) =>
      Effect.gen(function*() {
        const seqs: Array<number> = []
        const subscription = yield* collecting(name, seqs)
        const status = yield* withinRealTime(subscription.awaitCaughtUp, 2_000)
        assert.ok(Option.isSome(status), `${name} not caught up after 2 s; it applied ${seqs.join(",")}`)
        assert.deepEqual(seqs, expected)
      })
    yield* caughtUp("one segment", [1, 2, 3, 4, 5, 6, 7, 8, 11])
    // A second segment starts after the first one's range, above the last record it held.
    yield* append
    yield* archive.put({ startSeq: 11, endSeq: 12, records: (yield* Stream.runCollect(journal.replayFrom(0))).slice(-2) })
    yield* journal.truncateBefore(13)
    yield* append
    yield* caughtUp("two segments", [1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13])
  })))

test("an Archive missing the segment a reader needs is a stop at that seq, not a silent skip to the next segment", () =>
  run(Effect.gen(function*() {
    const journal = yield* Journal.Journal
    const archive = yield* Archive.Archive
    const records = yield* appendRecords(journal, 8)
    // The segment 1..4 is missing (an object lost, an archive started late): only 5..8 is there.
    yield* archive.put({ startSeq: 5, endSeq: 8, records: records.slice(4) })
    yield* journal.truncateBefore(9)
    const seqs: Array<number> = []
    const subscription = yield* collecting("hole", seqs)
    const stopped = yield* withinRealTime(expectError(subscription.await, "SubscriptionError", "hole", "seq 1", "Archive does not hold"), 2_000)
    assert.ok(Option.isSome(stopped), `no stop after 2 s; it applied ${seqs.join(",")}`)
    assert.deepEqual(seqs, [], "nothing applied past the missing records")
  })))

test("two instances given the same lease.owner still never both run: each owner id gets a random part", () =>
  run(Effect.gen(function*() {
    const journal = yield* Journal.Journal
    yield* journal.append({ namespace: "n", id: "x" }, "any", [event])
    const applied: Array<string> = []
    const make = (label: string) =>
      Subscription.make({ name: "same-owner", lease: { owner: "worker" }, handle: () => Effect.sync(() => applied.push(label)) })
    const first = yield* make("first")
    const second = yield* make("second")
    yield* advance(100)
    const states = [(yield* first.status).state, (yield* second.status).state].sort()
    assert.deepEqual(states, ["active", "standby"])
    assert.equal(applied.length, 1, `applied by ${applied.join(", ")}`)
    assert.notEqual(first.owner, second.owner)
    assert.ok(first.owner.startsWith("worker/") && second.owner.startsWith("worker/"))
  })))

test("a catch-up whose batches are all ready commits as it goes, not only when the scheduler's budget runs out", () =>
  run(Effect.gen(function*() {
    const journal = yield* Journal.Journal
    const cursors = yield* CursorStore.CursorStore
    const batches = 40
    for (let i = 0; i < batches * 10; i++) yield* journal.append({ namespace: "n", id: `s${i % 7}` }, "any", [event])
    const commits: Array<number> = []
    const counted: CursorStore.CursorStore = {
      ...cursors,
      commit: (name, seq, lease) => Effect.tap(cursors.commit(name, seq, lease), () => Effect.sync(() => void commits.push(seq)))
    }
    const subscription = yield* Subscription.make({ name: "steady", from: "start", batch: { maxRecords: 10 }, handle: () => Effect.void }).pipe(
      Effect.provideService(CursorStore.CursorStore, counted)
    )
    yield* subscription.awaitCaughtUp
    // The starting cursor, then (nearly) one commit per batch: a crash mid-catch-up redoes little.
    assert.ok(commits.length >= batches / 2, `only ${commits.length} commits for ${batches} batches: ${commits.join(", ")}`)
  })))
