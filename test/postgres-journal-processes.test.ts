/**
 * The PostgreSQL Journal across processes and under stress (DESIGN §2, §8): 4 processes × 4 fibers
 * appending with expectedVersion to overlapping streams while a fifth follows (dense versions, no
 * record lost or doubled, every conflict real and reported, the follower sees every record once in
 * seq order); a transaction that takes a lower seq and commits seconds after others wanted higher
 * ones (they wait: nothing is reordered behind a reader); connections killed mid-append (typed
 * errors, no partial append, the layer goes on).
 */
import { Context, Effect, Fiber, Layer, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import postgres from "postgres"
import { Journal } from "../src/index.ts"
import { PgJournal } from "../src/postgres/index.ts"
import { spawnChild, withTimeout } from "./support/childProcess.ts"
import { isolatedSchema, type PgTarget, pgTargets } from "./support/postgres.ts"

/** Runs `body` with a fresh schema name on `target`, dropped afterwards. */
const withSchema = <A, E>(target: PgTarget, body: (schema: string) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(isolatedSchema(target), body))

/** `effect`, failing the test naming `what` if it takes over 30 s (a hang is a failure, not a stuck run). */
const bounded = <A, E>(what: string, effect: Effect.Effect<A, E>) =>
  Effect.promise(() => withTimeout(Effect.runPromise(effect), 30_000, what))

const wallSleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))
const event = (text: string) => ({ type: "E", payload: new TextEncoder().encode(text) })

for (const target of await pgTargets()) {
  test(`${target.name}: 4 processes × 4 fibers append with expectedVersion to overlapping streams while a fifth follows: nothing lost, doubled or reordered`, () =>
    Effect.runPromise(withSchema(target, (schema) =>
      Effect.scoped(Effect.gen(function*() {
        const processes = 4
        const fibers = 4
        const appends = 15
        const total = processes * fibers * appends
        const follower = yield* spawnChild("pgJournalChild", [target.url, schema, "follow", String(total)])
        yield* Effect.promise(() => withTimeout(follower.line(/^ready$/), 60_000, "the follower"))
        const writers = yield* Effect.forEach(Array.from({ length: processes }, (_, p) => p), (p) =>
          spawnChild("pgJournalChild", [target.url, schema, "append", String(p), String(fibers), String(appends), "6"]))
        for (const writer of writers) {
          const end = yield* Effect.promise(() => withTimeout(writer.closed, 120_000, "a writer"))
          assert.equal(end.code, 0, `a writer failed: ${writer.stderr()}`)
        }
        const followed = yield* Effect.promise(() => withTimeout(follower.closed, 60_000, "the follower"))
        assert.equal(followed.code, 0, `the follower failed: ${follower.stderr()}`)

        const successes = writers.flatMap((w) => w.lines().filter((l) => l.startsWith("ok "))).map((l) => {
          const [, id, expected, seq, version] = l.split(" ")
          return { id: id!, expected: Number(expected), seq: Number(seq), version: Number(version) }
        })
        const conflicts = writers.flatMap((w) => w.lines().filter((l) => l.startsWith("conflict "))).map((l) => {
          const [, id, expected, actual] = l.split(" ")
          return { id: id!, expected: Number(expected), actual: Number(actual) }
        })
        assert.equal(successes.length, total)
        assert.equal(new Set(successes.map((s) => s.seq)).size, total, "every acknowledged seq is unique")
        for (const s of successes) assert.equal(s.version, s.expected + 1)
        // Versions dense per stream, and the log holds exactly the acknowledged appends.
        const byStream = new Map<string, Array<number>>()
        for (const s of successes) byStream.set(s.id, [...(byStream.get(s.id) ?? []), s.version])
        for (const [id, versions] of byStream) {
          assert.deepEqual(versions.sort((a, b) => a - b), Array.from({ length: versions.length }, (_, i) => i + 1), `stream ${id}`)
        }
        const journal = Context.get(yield* Layer.build(PgJournal.layer({ url: target.url, schema })), Journal.Journal)
        const log = yield* Stream.runCollect(journal.replayFrom(0))
        assert.deepEqual(
          log.map((r) => `${r.seq} ${r.id} ${r.version}`),
          successes.sort((a, b) => a.seq - b.seq).map((s) => `${s.seq} ${s.id} ${s.version}`)
        )
        // The follower saw every record once, in seq order.
        const seen = follower.lines().filter((l) => l.startsWith("seq ")).map((l) => l.slice(4))
        assert.deepEqual(seen, log.map((r) => `${r.seq} ${r.id} ${r.version}`))
        // Every conflict was real: someone else's append took the version it expected to write.
        const taken = new Set(successes.map((s) => `${s.id} ${s.version}`))
        for (const c of conflicts) {
          assert.ok(c.actual > c.expected && taken.has(`${c.id} ${c.expected + 1}`), `conflict ${JSON.stringify(c)}`)
        }
      }))
    )))

  test(`${target.name}: a transaction holding a lower seq for seconds: later appends wait for it, and no reader ever sees a record behind one it saw`, () =>
    Effect.runPromise(withSchema(target, (schema) =>
      Effect.scoped(Effect.gen(function*() {
        const journal = Context.get(yield* Layer.build(PgJournal.layer({ url: target.url, schema, pollIntervalMs: 100 })), Journal.Journal)
        yield* journal.append({ namespace: "h", id: "a" }, 0, [event("first")])
        const seen: Array<number> = []
        const follower = yield* Effect.forkScoped(Stream.runForEach(journal.follow(0), (r) => Effect.sync(() => void seen.push(r.seq))))
        // Another process's append, by hand: it locks the journal row, takes seq 2 and holds on.
        const raw = postgres(target.url, { max: 1, onnotice: () => {} })
        let release!: () => void
        const held = new Promise<void>((resolve) => (release = resolve))
        const slow = raw.begin(async (tx) => {
          const [row] = await tx.unsafe(`SELECT last_seq FROM "${schema}"."annals_journal" WHERE id = 1 FOR UPDATE`)
          const seq = Number(row!.last_seq) + 1
          await tx.unsafe(
            `INSERT INTO "${schema}"."annals_records" (seq, namespace, id, version, type, timestamp, payload) VALUES ($1, 'h', 'slow', 1, 'E', 0, '\\x00')`,
            [String(seq)]
          )
          await tx.unsafe(`INSERT INTO "${schema}"."annals_streams" (namespace, id, version) VALUES ('h', 'slow', 1)`)
          await tx.unsafe(`UPDATE "${schema}"."annals_journal" SET last_seq = $1 WHERE id = 1`, [String(seq)])
          await held
          await tx.unsafe(`SELECT pg_notify($1, $2)`, ["unused", String(seq)])
        })
        yield* wallSleep(200)
        const appends = yield* Effect.forkScoped(Effect.forEach(["b", "c", "d"], (id) => journal.append({ namespace: "h", id }, 0, [event(id)]), { concurrency: "unbounded" }))
        yield* wallSleep(1_500)
        assert.equal(appends.pollUnsafe(), undefined, "the appends wait for the held transaction")
        assert.deepEqual(seen, [1], "the follower sees nothing past the held seq")
        assert.equal(yield* journal.lastSeq, 1)
        release()
        yield* Effect.promise(() => slow)
        const results = yield* Fiber.join(appends)
        assert.deepEqual(results.map((r) => r.firstSeq).sort(), [3, 4, 5])
        for (let i = 0; i < 200 && seen.length < 5; i++) yield* wallSleep(10)
        assert.deepEqual(seen, [1, 2, 3, 4, 5], "every record once, in seq order, the held one in its place")
        yield* Fiber.interrupt(follower)
        yield* Effect.promise(() => raw.end())
      }))
    )))

  // Open driver problems (postgres.js 3.4.9, patched as scripts/patch-postgres.mjs says), so this runs
  // on Bun only for now: on Deno, about one run in five, a query on a killed connection never settles
  // (postgres.js over Deno's node:net), and the writers hang; on Node, once in a full CI run, the kill
  // surfaced as an unhandled rejection (a PostgresError 57P01 from a query of the driver's own that
  // nobody awaits), which fails the test process.
  const skip = "Deno" in globalThis
    ? "a killed connection's query can hang on Deno (see the comment)"
    : "Bun" in globalThis
    ? false
    : "a kill can surface as an unhandled rejection inside postgres.js on Node (see the comment)"
  test(`${target.name}: connections killed mid-append: each append succeeds or fails with a JournalError, none is partial, and the journal goes on`, { skip }, () =>
    Effect.runPromise(withSchema(target, (schema) =>
      Effect.scoped(Effect.gen(function*() {
        const name = `annals-kill-${schema}`
        const sql = postgres(target.url, { max: 4, onnotice: () => {}, connection: { application_name: name } })
        yield* Effect.addFinalizer(() => Effect.promise(() => sql.end({ timeout: 1 })))
        const journal = Context.get(yield* Layer.build(PgJournal.layer({ sql, schema })), Journal.Journal)
        const killer = postgres(target.url, { max: 1, onnotice: () => {} })
        const outcomes: Array<{ id: string; ok: boolean; message?: string }> = []
        const writers = yield* Effect.forkScoped(Effect.forEach(Array.from({ length: 8 }, (_, w) => w), (w) =>
          Effect.gen(function*() {
            for (let i = 0; i < 25; i++) {
              const id = `w${w}-${i}`
              const result = yield* Effect.result(journal.append({ namespace: "k", id }, 0, [event(`${id}.1`), event(`${id}.2`), event(`${id}.3`)]))
              outcomes.push(result._tag === "Success" ? { id, ok: true } : { id, ok: false, message: `${result.failure._tag}: ${result.failure.message}` })
            }
          }), { concurrency: "unbounded", discard: true }))
        let terminated = 0
        for (let k = 0; k < 4; k++) {
          yield* wallSleep(30)
          const rows = yield* Effect.promise(() => killer.unsafe(`SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1`, [name]))
          terminated += rows.filter((row) => row.done === true).length
        }
        yield* Effect.promise(() => withTimeout(Effect.runPromise(Fiber.join(writers)), 60_000, "the writers"))
        yield* Effect.promise(() => killer.end())
        assert.equal(outcomes.length, 200)
        const failed = outcomes.filter((o) => !o.ok)
        assert.ok(terminated > 0, "the kills terminated connections")
        for (const o of failed) assert.match(o.message!, /^JournalError: Cannot append to stream k\/w/)
        // After the kills it works again, and no append is partial: each stream has 0 or 3 records.
        yield* bounded("the append after the kills", journal.append({ namespace: "k", id: "after" }, 0, [event("after")]))
        const log = yield* bounded("the replay after the kills", Stream.runCollect(journal.replayFrom(0)))
        const counts = new Map<string, number>()
        for (const r of log) counts.set(r.id, (counts.get(r.id) ?? 0) + 1)
        for (const [id, n] of counts) if (id !== "after") assert.equal(n, 3, `stream ${id} has ${n} records`)
        for (const o of outcomes) if (o.ok) assert.equal(counts.get(o.id), 3, `acknowledged ${o.id} is stored whole`)
        // A failure that was not a lost connection stored nothing.
        for (const o of failed) if (!/may or may not/.test(o.message!)) assert.equal(counts.get(o.id), undefined, `${o.id}: ${o.message}`)
      }))
    )))
}
