/**
 * Spans and metrics (issue 16): span names, parents and attributes under a test tracer, and metric
 * values after appends on the memory and file journals, a Repository conflict and a subscription.
 * Each test runs with a fresh MetricRegistry, so counts start at 0.
 */
import { Effect, Layer, Metric, Option, type Scope, Tracer } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { CursorStore, Journal, Metrics, Repository, SnapshotStore, Subscription } from "../src/index.ts"
import { FileJournal } from "../src/file/index.ts"
import { append, type LedgerEvent, ledger } from "./support/ledger.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

/** A tracer that keeps every span it makes. */
const collecting = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

const run = (body: Effect.Effect<void, unknown, Scope.Scope>) =>
  Effect.runPromise(body.pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())))

const stores = Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory(), CursorStore.layerMemory)
const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })
const byName = (spans: ReadonlyArray<Tracer.NativeSpan>, name: string) => spans.filter((span) => span.name === name)
const appendCount = (backend: string) =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.appendDuration, { backend })), (state) => state.count)

test("Repository.execute is the parent of Journal.append; both carry stream and seq attributes", () =>
  run(Effect.gen(function*() {
    const { spans, tracer } = collecting()
    yield* Effect.gen(function*() {
      const repository = yield* Repository.make(ledger())
      yield* repository.execute("a", append([credit(1), credit(2)]))
      yield* repository.load("a")
    }).pipe(Effect.provide(stores), Effect.withTracer(tracer))
    const [execute] = byName(spans, "annals.Repository.execute")
    const [appendSpan] = byName(spans, "annals.Journal.append")
    assert.ok(execute !== undefined && appendSpan !== undefined, spans.map((s) => s.name).join(", "))
    assert.equal(Option.getOrUndefined(appendSpan.parent)?.spanId, execute.spanId)
    assert.equal(appendSpan.status._tag, "Ended")
    assert.deepEqual(Object.fromEntries(appendSpan.attributes), {
      "annals.backend": "memory",
      "annals.stream.namespace": "ledger",
      "annals.stream.id": "a",
      "annals.expected_version": 0,
      "annals.events": 2,
      "annals.first_seq": 1,
      "annals.last_seq": 2,
      "annals.version": 2
    })
    assert.equal(execute.attributes.get("annals.stream.id"), "a")
    assert.equal(execute.attributes.get("annals.version"), 2)
    assert.equal(byName(spans, "annals.Repository.load")[0]?.attributes.get("annals.version"), 2)
    assert.ok(byName(spans, "annals.Journal.read").length > 0)
    assert.ok(byName(spans, "annals.Journal.version").every((span) => span.attributes.get("annals.backend") === "memory"))
  })))

/**
 * A memory Journal that notes, at each `version` and `append`, the name of the span current in the
 * caller: the Repository's own span when it made one, else the caller's.
 */
const spanNotingJournal = Effect.gen(function*() {
  const inner = yield* Journal.makeMemory
  const seen: Array<string> = []
  const note = Effect.map(Effect.option(Effect.currentSpan), (span) => {
    seen.push(Option.match(span, { onNone: () => "no span", onSome: (span) => span.name }))
  })
  const journal: Journal.Journal = {
    ...inner,
    version: (stream) => Effect.andThen(note, inner.version(stream)),
    append: (stream, expectedVersion, events) => Effect.andThen(note, inner.append(stream, expectedVersion, events))
  }
  return { journal, seen }
})

test("with no tracer installed, execute and load make no spans of their own; with one, they do", () =>
  run(Effect.gen(function*() {
    const { spans, tracer } = collecting()
    const commands = (id: string) =>
      Effect.gen(function*() {
        const repository = yield* Repository.make(ledger())
        yield* repository.execute(id, append([credit(1)]))
        yield* repository.load(id)
      })
    for (const traced of [false, true]) {
      const { journal, seen } = yield* spanNotingJournal
      const body = commands(traced ? "traced" : "untraced").pipe(
        Effect.withSpan("caller"),
        Effect.provide(Layer.mergeAll(Layer.succeed(Journal.Journal, journal), SnapshotStore.layerMemory()))
      )
      yield* traced ? Effect.withTracer(body, tracer) : body
      // execute: its load's version, then the append; load: its version.
      assert.deepEqual(
        seen,
        traced
          ? ["annals.Repository.execute", "annals.Repository.execute", "annals.Repository.load"]
          : ["caller", "caller", "caller"],
        traced ? "the traced run" : "the run without a tracer"
      )
    }
    assert.deepEqual(byName(spans, "caller").length, 1)
  })))

test("append latency is recorded per backend on the memory and the file journal, with the file writer's flushes", () =>
  run(Effect.gen(function*() {
    const stream = { namespace: "n", id: "1" }
    const event = { type: "E", payload: new Uint8Array([1]) }
    const memory = yield* Journal.makeMemory
    yield* memory.append(stream, 0, [event])
    yield* memory.append(stream, 1, [event])
    const file = yield* FileJournal.make({ directory: yield* tempDirectory("observability") })
    yield* Effect.all([file.append(stream, 0, [event]), file.append({ ...stream, id: "2" }, 0, [event])], { concurrency: "unbounded" })
    assert.equal(yield* appendCount("memory"), 2)
    assert.equal(yield* appendCount("file"), 2)
    const fsync = yield* Metric.value(Metric.withAttributes(Metrics.fsyncDuration, { backend: "file" }))
    const groups = yield* Metric.value(Metric.withAttributes(Metrics.groupCommitSize, { backend: "file" }))
    assert.ok(fsync.count >= 1)
    assert.ok(groups.count >= 1 && groups.sum === 2, `group commits: ${groups.count}, appends ${groups.sum}`)
    // No tracer installed: the append makes no span, so the failure below is the only one it reports.
    const conflict = yield* Effect.flip(memory.append(stream, 0, [event]))
    assert.equal(conflict._tag, "VersionConflict")
    assert.equal(yield* appendCount("memory"), 3)
  })))

test("a Repository conflict counts a conflict and a retry; the retried append's records are counted as replayed", () =>
  run(Effect.gen(function*() {
    const repository = yield* Repository.make(ledger())
    const other = yield* Repository.make(ledger())
    yield* repository.execute("c", append([credit(1)]))
    let sneaked = false
    // Another writer appends while the command runs, once, so the first attempt conflicts.
    yield* repository.execute("c", (state) =>
      Effect.gen(function*() {
        if (!sneaked) {
          sneaked = true
          yield* other.execute("c", append([credit(5)]))
        }
        return [credit(state.balance)]
      }).pipe(Effect.orDie))
    const namespace = { namespace: "ledger" }
    assert.equal((yield* Metric.value(Metric.withAttributes(Metrics.conflicts, namespace))).count, 1)
    assert.equal((yield* Metric.value(Metric.withAttributes(Metrics.retries, namespace))).count, 1)
    assert.ok((yield* Metric.value(Metric.withAttributes(Metrics.recordsReplayed, namespace))).count >= 1)
  }).pipe(Effect.provide(stores))))

test("a subscription sets its lag gauge after every batch and spans each batch", () =>
  run(Effect.gen(function*() {
    const { spans, tracer } = collecting()
    const journal = yield* Journal.Journal
    for (let version = 0; version < 3; version++) {
      yield* journal.append({ namespace: "s", id: "1" }, version, [{ type: "E", payload: new Uint8Array() }])
    }
    const lag = Metric.withAttributes(Metrics.subscriptionLag, { subscription: "lagging" })
    const seen: Array<number> = []
    const subscription = yield* Subscription.make({
      name: "lagging",
      from: "start",
      batch: { maxRecords: 1 },
      handle: () => Effect.flatMap(Metric.value(lag), (state) => Effect.sync(() => seen.push(state.value)))
    }).pipe(Effect.withTracer(tracer))
    const status = yield* subscription.awaitCaughtUp
    assert.equal(status.lagRecords, 0)
    // Read by the handler of batches 1, 2 and 3: unset, then lastSeq − the previous batch's last seq.
    assert.deepEqual(seen, [0, 2, 1])
    assert.equal((yield* Metric.value(lag)).value, 0)
    const batches = byName(spans, "annals.Subscription.batch")
    assert.deepEqual(batches.map((span) => [span.attributes.get("annals.first_seq"), span.attributes.get("annals.records")]), [[1, 1], [2, 1], [3, 1]])
    assert.equal(batches[0]!.attributes.get("annals.subscription"), "lagging")
  }).pipe(Effect.provide(stores))))
