/**
 * Adversarial cases of the Subscription runtime (DESIGN §6) found in review: each one failed
 * before the fix committed with it. Memory layers under a TestClock: deterministic and fast.
 */
import { Clock, Effect, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { CursorStore, Journal, Subscription } from "../src/index.ts"
import { expectError } from "./conformance/harness.ts"

const event = { type: "E", payload: new Uint8Array([1]) }
const memory = Layer.mergeAll(Journal.layerMemory, CursorStore.layerMemory)

/** Runs `body` over a memory Journal and CursorStore under a TestClock starting at 0. */
const run = (body: Effect.Effect<void, unknown, Scope.Scope | Journal.Journal | CursorStore.CursorStore>) =>
  Effect.runPromise(body.pipe(Effect.scoped, Effect.provide(memory), Effect.provide(TestClock.layer())))

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
