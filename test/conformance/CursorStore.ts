/**
 * The CursorStore conformance suite (DESIGN §5), written once and run against every CursorStore
 * layer: forward-only cursors, listing and deletion, leases with fencing tokens, persistence,
 * concurrent updates in one process, and bad input.
 */
import { Effect, type Layer, Option, Result } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { type Cursor, CursorStore, type CursorStoreError, type Lease, type LeaseHeld, type LeaseLost } from "../../src/CursorStore.ts"
import { type Case, expectError, open } from "./harness.ts"

/**
 * How a fixture opens a CursorStore: every build of `layer` opens the fixture's storage (for a
 * durable fixture, a second build is a reopen of the same data; the first must be closed by then).
 */
export interface CursorStorage {
  readonly layer: Layer.Layer<CursorStore, unknown>
}

type Service = CursorStore

const withStore = (name: string, body: (store: Service) => Effect.Effect<void, unknown>): Case<CursorStorage> => ({
  name,
  run: (storage) => Effect.flatMap(open(CursorStore, storage.layer), body)
})

/** A durableOnly case: `before` runs on a store that is then closed; `after` on the store reopened. */
const acrossReopen = <A>(
  name: string,
  before: (store: Service) => Effect.Effect<A, unknown>,
  after: (store: Service, carried: A) => Effect.Effect<void, unknown>
): Case<CursorStorage> => ({
  name,
  durableOnly: true,
  run: (storage) =>
    Effect.gen(function*() {
      const carried = yield* Effect.scoped(Effect.flatMap(open(CursorStore, storage.layer), before))
      yield* after(yield* open(CursorStore, storage.layer), carried)
    })
})

const cursorOf = (store: Service, name: string): Effect.Effect<Cursor | undefined, unknown> =>
  Effect.map(store.get(name), Option.getOrUndefined)

/** Asserts that `lease` is `owner`'s lease of `name` until `until`, with a positive integer token. */
const assertLease = (lease: Lease, name: string, owner: string, until: number) => {
  assert.deepEqual({ name: lease.name, owner: lease.owner, until: lease.until }, { name, owner, until })
  assert.ok(Number.isSafeInteger(lease.token) && lease.token >= 1, `the token must be a positive integer, got ${lease.token}`)
}

const names = ["b", "a/b", "日本", "C", "\u{1F600}", "a", "é"]
/** `names` in the order `list` must return them (UTF-16 code units; the same as code points for these). */
const sortedNames = ["C", "a", "a/b", "b", "é", "日本", "\u{1F600}"]

/** Every CursorStore conformance case. */
export const cursorStoreCases: ReadonlyArray<Case<CursorStorage>> = [
  withStore("get of an unknown name is none, and a new store lists nothing", (store) =>
    Effect.gen(function*() {
      assert.ok(Option.isNone(yield* store.get("orders")))
      assert.deepEqual(yield* store.list, [])
      yield* store.commit("orders", 3)
      for (const other of ["order", "orders ", "Orders", "orders/x"]) {
        assert.ok(Option.isNone(yield* store.get(other)), `${JSON.stringify(other)} is another name`)
      }
    })),

  withStore("commit then get returns the seq and the time of the commit (Effect's Clock)", (store) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_700_000_000_000)
      yield* store.commit("orders", 5)
      assert.deepEqual(yield* cursorOf(store, "orders"), { name: "orders", seq: 5, updatedAt: 1_700_000_000_000 })
      yield* TestClock.adjust(250)
      yield* store.commit("orders", 9)
      assert.deepEqual(yield* cursorOf(store, "orders"), { name: "orders", seq: 9, updatedAt: 1_700_000_000_250 })
      yield* store.commit("none applied yet", 0)
      assert.deepEqual(yield* cursorOf(store, "none applied yet"), { name: "none applied yet", seq: 0, updatedAt: 1_700_000_000_250 })
      yield* store.commit("far", Number.MAX_SAFE_INTEGER)
      assert.equal((yield* cursorOf(store, "far"))?.seq, Number.MAX_SAFE_INTEGER)
    })),

  withStore("a cursor never moves back: a lower or equal seq is ignored and updatedAt is kept", (store) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_000)
      yield* store.commit("s", 10)
      yield* TestClock.adjust(1_000)
      for (const seq of [3, 10, 0, 9]) yield* store.commit("s", seq)
      assert.deepEqual(yield* cursorOf(store, "s"), { name: "s", seq: 10, updatedAt: 1_000 })
      yield* TestClock.adjust(1_000)
      yield* store.commit("s", 11)
      assert.deepEqual(yield* cursorOf(store, "s"), { name: "s", seq: 11, updatedAt: 3_000 })
    })),

  withStore("names are independent; list returns only the committed cursors, ordered by name", (store) =>
    Effect.gen(function*() {
      for (const [i, name] of names.entries()) yield* store.commit(name, 10 + i)
      yield* store.acquire("leased, never committed", "A", 1_000)
      yield* store.commit("a", 100)
      assert.deepEqual(
        (yield* store.list).map((c) => [c.name, c.seq]),
        sortedNames.map((name) => [name, name === "a" ? 100 : 10 + names.indexOf(name)])
      )
      assert.ok(Option.isNone(yield* store.get("leased, never committed")))
      assert.deepEqual(yield* cursorOf(store, "a/b"), { name: "a/b", seq: 11, updatedAt: 0 })
    })),

  withStore("delete removes the cursor and its lease; deleting an unknown name is a no-op", (store) =>
    Effect.gen(function*() {
      yield* store.commit("a", 5)
      yield* store.commit("b", 7)
      const lease = yield* store.acquire("a", "A", 10_000)
      yield* store.delete("a")
      assert.ok(Option.isNone(yield* store.get("a")))
      assert.deepEqual((yield* store.list).map((c) => c.name), ["b"])
      yield* store.delete("a")
      yield* store.delete("never")
      const next = yield* store.acquire("a", "B", 10_000)
      assertLease(next, "a", "B", 10_000)
      assert.ok(next.token > lease.token, `a later owner's token ${next.token} must be above ${lease.token}, the cursor deleted or not`)
      const lost = yield* expectError(store.commit("a", 9, lease), "LeaseLost", "A", "B")
      assert.equal(lost.holder, "B")
      yield* store.commit("a", 1)
      assert.equal((yield* cursorOf(store, "a"))?.seq, 1, "a deleted cursor starts afresh")
      assert.equal((yield* cursorOf(store, "b"))?.seq, 7)
    })),

  acrossReopen(
    "cursors survive a reopen, seq and updatedAt intact",
    (store) =>
      Effect.gen(function*() {
        yield* TestClock.setTime(5_000)
        yield* store.commit("a", 5)
        yield* TestClock.adjust(10)
        yield* store.commit("b/..", 8)
        yield* store.commit("c", 1)
        yield* store.delete("c")
      }),
    (store) =>
      Effect.gen(function*() {
        assert.deepEqual(yield* store.list, [{ name: "a", seq: 5, updatedAt: 5_000 }, { name: "b/..", seq: 8, updatedAt: 5_010 }])
        yield* store.commit("a", 4)
        assert.deepEqual(yield* cursorOf(store, "a"), { name: "a", seq: 5, updatedAt: 5_000 })
        assert.ok(Option.isNone(yield* store.get("c")))
      })
  ),

  withStore("acquire takes a free name until now + ttlMs; a renewal keeps the token and moves until", (store) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_000)
      const lease = yield* store.acquire("s", "A", 500)
      assertLease(lease, "s", "A", 1_500)
      yield* TestClock.adjust(200)
      const renewed = yield* store.acquire("s", "A", 500)
      assert.deepEqual(renewed, { ...lease, until: 1_700 })
      assert.deepEqual(yield* store.acquire("s", "A", 100), { ...lease, until: 1_300 }, "a renewal may also shorten it")
      yield* store.commit("s", 1, lease)
      assert.equal((yield* cursorOf(store, "s"))?.seq, 1, "the lease from before the renewals is the same lease")
    })),

  withStore("acquire is refused with LeaseHeld (naming owner and until) while another owner's lease is live", (store) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_000)
      const lease = yield* store.acquire("s", "A", 500)
      yield* TestClock.adjust(499)
      const held = yield* expectError(store.acquire("s", "B", 5_000), "LeaseHeld", "A", new Date(1_500).toISOString())
      assert.deepEqual({ name: held.name, owner: held.owner, until: held.until }, { name: "s", owner: "A", until: 1_500 })
      assert.deepEqual(yield* store.acquire("s", "A", 500), { ...lease, until: 1_999 }, "the refusal changed nothing")
      assertLease(yield* store.acquire("t", "B", 500), "t", "B", 1_999)
    })),

  withStore("a lease expires at until: then another owner takes the name with a higher token", (store) =>
    Effect.gen(function*() {
      const first = yield* store.acquire("s", "A", 1_000)
      yield* TestClock.adjust(999)
      yield* expectError(store.acquire("s", "B", 1_000), "LeaseHeld", "A")
      yield* TestClock.adjust(1)
      const second = yield* store.acquire("s", "B", 1_000)
      assertLease(second, "s", "B", 2_000)
      assert.ok(second.token > first.token, `a new owner's token ${second.token} must be above ${first.token}`)
      yield* expectError(store.acquire("s", "A", 1_000), "LeaseHeld", "B")
    })),

  withStore("commit with a stale lease fails with LeaseLost naming both owners, and the cursor does not move", (store) =>
    Effect.gen(function*() {
      const stale = yield* store.acquire("s", "A", 1_000)
      yield* store.commit("s", 5, stale)
      yield* TestClock.adjust(1_000)
      const current = yield* store.acquire("s", "B", 1_000)
      const lost = yield* expectError(store.commit("s", 9, stale), "LeaseLost", "A", "B")
      assert.deepEqual({ name: lost.name, owner: lost.owner, holder: lost.holder }, { name: "s", owner: "A", holder: "B" })
      yield* expectError(store.commit("s", 1, stale), "LeaseLost", "A")
      assert.deepEqual(yield* cursorOf(store, "s"), { name: "s", seq: 5, updatedAt: 0 })
      yield* store.commit("s", 9, current)
      assert.deepEqual(yield* cursorOf(store, "s"), { name: "s", seq: 9, updatedAt: 1_000 })
    })),

  withStore("commit with the current lease moves the cursor, and keeps the lease", (store) =>
    Effect.gen(function*() {
      const lease = yield* store.acquire("s", "A", 1_000)
      yield* store.commit("s", 3, lease)
      yield* store.commit("s", 4, lease)
      assert.equal((yield* cursorOf(store, "s"))?.seq, 4)
      yield* expectError(store.acquire("s", "B", 1_000), "LeaseHeld", "A")
      assert.equal((yield* store.acquire("s", "A", 1_000)).token, lease.token)
    })),

  withStore("commit without a lease always works, also while another owner holds the name", (store) =>
    Effect.gen(function*() {
      yield* store.acquire("s", "A", 1_000)
      yield* store.commit("s", 4)
      yield* store.commit("free", 2)
      assert.deepEqual((yield* store.list).map((c) => [c.name, c.seq]), [["free", 2], ["s", 4]])
      yield* expectError(store.acquire("s", "B", 1_000), "LeaseHeld", "A")
    })),

  withStore("release frees the name at once; the released lease no longer commits, and every new lease gets a higher token", (store) =>
    Effect.gen(function*() {
      const a = yield* store.acquire("s", "A", 10_000)
      yield* store.release("s", "A")
      const b = yield* store.acquire("s", "B", 10_000)
      assert.ok(b.token > a.token, `token ${b.token} must be above ${a.token}`)
      yield* expectError(store.commit("s", 1, a), "LeaseLost", "A", "B")
      yield* store.release("s", "B")
      const unheld = yield* expectError(store.commit("s", 1, b), "LeaseLost", "B")
      assert.equal(unheld.holder, undefined, "nobody holds the name")
      const again = yield* store.acquire("s", "A", 10_000)
      assert.ok(again.token > b.token, "the same owner after its release gets a new lease")
      yield* expectError(store.commit("s", 1, a), "LeaseLost", "A")
      assert.ok(Option.isNone(yield* store.get("s")))
    })),

  withStore("release by an owner that does not hold the lease is a no-op", (store) =>
    Effect.gen(function*() {
      const lease = yield* store.acquire("s", "A", 10_000)
      yield* store.release("s", "B")
      yield* store.release("unknown", "A")
      yield* expectError(store.acquire("s", "C", 10_000), "LeaseHeld", "A")
      yield* store.commit("s", 2, lease)
      assert.equal((yield* store.acquire("s", "A", 10_000)).token, lease.token)
    })),

  withStore("the same owner re-acquiring after its lease expired, when no one else took it, keeps its token", (store) =>
    Effect.gen(function*() {
      const lease = yield* store.acquire("s", "A", 1_000)
      yield* TestClock.adjust(5_000)
      yield* store.commit("s", 1, lease)
      assert.equal((yield* cursorOf(store, "s"))?.seq, 1, "an expired lease no one took still commits")
      assert.deepEqual(yield* store.acquire("s", "A", 1_000), { ...lease, until: 6_000 })
      yield* store.commit("s", 2, lease)
      assert.equal((yield* cursorOf(store, "s"))?.seq, 2)
    })),

  acrossReopen(
    "leases and fencing tokens survive a reopen",
    (store) =>
      Effect.gen(function*() {
        const lease = yield* store.acquire("s", "A", 10_000)
        yield* store.commit("s", 4, lease)
        const other = yield* store.acquire("released", "X", 10_000)
        yield* store.release("released", "X")
        return { lease, other }
      }),
    (store, { lease, other }) =>
      Effect.gen(function*() {
        const held = yield* expectError(store.acquire("s", "B", 10_000), "LeaseHeld", "A")
        assert.equal(held.until, 10_000)
        yield* store.commit("s", 5, lease)
        assert.equal((yield* cursorOf(store, "s"))?.seq, 5)
        yield* TestClock.adjust(10_000)
        const taken = yield* store.acquire("s", "B", 1_000)
        assert.ok(taken.token > lease.token)
        yield* expectError(store.commit("s", 6, lease), "LeaseLost", "A", "B")
        const next = yield* store.acquire("released", "Y", 1_000)
        assert.ok(next.token > other.token, "the last token handed out is kept after a release, across the reopen")
      })
  ),

  withStore("concurrent acquires of one name by many owners: exactly one wins, the others are told who", (store) =>
    Effect.gen(function*() {
      const owners = Array.from({ length: 16 }, (_, i) => `owner-${i}`)
      const results = yield* Effect.forEach(owners, (owner) => Effect.result(store.acquire("s", owner, 10_000)), {
        concurrency: "unbounded"
      })
      const winners = results.filter(Result.isSuccess).map((r) => r.success)
      assert.equal(winners.length, 1, `exactly one owner must win, got ${winners.map((w) => w.owner).join(", ")}`)
      const winner = winners[0]!
      for (const result of results) {
        if (Result.isFailure(result)) {
          assert.equal(result.failure._tag, "LeaseHeld")
          assert.equal((result.failure as { readonly owner?: string }).owner, winner.owner)
        }
      }
      yield* store.commit("s", 1, winner)
      assert.equal((yield* store.acquire("s", winner.owner, 10_000)).token, winner.token)
    })),

  withStore("concurrent commits of one name: the highest seq wins, for each name", (store) =>
    Effect.gen(function*() {
      const seqs = Array.from({ length: 24 }, (_, i) => ((i * 7) % 24) + 1) // 1..24 shuffled
      yield* Effect.forEach(seqs.flatMap((seq) => [["x", seq], ["y", 25 - seq]] as const), ([name, seq]) => store.commit(name, seq), {
        concurrency: "unbounded",
        discard: true
      })
      assert.deepEqual((yield* store.list).map((c) => [c.name, c.seq]), [["x", 24], ["y", 24]])
    })),

  withStore("bad input fails with a CursorStoreError naming the problem, and stores nothing", (store) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_000)
      const lease = (fields: object) => ({ name: "s", owner: "A", until: 2_000, token: 1, ...fields }) as unknown as Lease
      const unreadable = new Proxy({}, {
        get: () => {
          throw new Error("revoked")
        }
      }) as Lease
      const bad: ReadonlyArray<readonly [Effect.Effect<unknown, CursorStoreError | LeaseHeld | LeaseLost>, ...Array<string>]> = [
        [store.get(""), "empty"],
        [store.commit("", 1), "empty"],
        [store.commit("a\u0000b", 1), "NUL"],
        [store.commit("\uD800x", 1), "surrogate"],
        [store.commit("x".repeat(257), 1), "257"],
        [store.commit("s", -1), "seq"],
        [store.commit("s", 1.5), "seq"],
        [store.commit("s", Number.MAX_SAFE_INTEGER + 1), "seq"],
        [store.commit("s", Number.NaN), "seq"],
        [store.commit("s", "3" as unknown as number), "seq"],
        [store.commit("s", 1, null as unknown as Lease), "lease"],
        [store.commit("s", 1, "lease" as unknown as Lease), "lease"],
        [store.commit("s", 1, lease({ name: "other" })), "lease", "other"],
        [store.commit("s", 1, lease({ token: 0 })), "token"],
        [store.commit("s", 1, lease({ owner: "" })), "owner"],
        [store.commit("s", 1, unreadable), "revoked"],
        [store.acquire("s", "A", 0), "ttlMs"],
        [store.acquire("s", "A", -5), "ttlMs"],
        [store.acquire("s", "A", 1.5), "ttlMs"],
        [store.acquire("s", "A", Number.POSITIVE_INFINITY), "ttlMs"],
        [store.acquire("s", "A", Number.MAX_SAFE_INTEGER), "ttlMs", "MAX_SAFE_INTEGER"],
        [store.acquire("s", "", 1_000), "owner"],
        [store.acquire("", "A", 1_000), "empty"],
        [store.release("s", "a\u0000"), "owner", "NUL"],
        [store.release("\uDC00", "A"), "surrogate"],
        [store.delete(""), "empty"]
      ]
      for (const [effect, ...mentions] of bad) {
        const error = yield* expectError(effect, "CursorStoreError", ...mentions)
        assert.ok(error.message.startsWith("CursorStore."), `the message names the operation: ${error.message}`)
      }
      assert.deepEqual(yield* store.list, [])
      assertLease(yield* store.acquire("s", "B", 1_000), "s", "B", 2_000)
      const longest = "x".repeat(256)
      yield* store.commit(longest, 1)
      assert.equal((yield* cursorOf(store, longest))?.seq, 1, "a name of 256 characters is valid")
    }))
]
