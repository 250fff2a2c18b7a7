/**
 * The multi-process Journal scenario shared by the PostgreSQL, Redis and NATS tests (DESIGN §2): 4
 * processes × 4 fibers of test/support/journalChild.ts append with expectedVersion to 6 overlapping
 * streams while a fifth process follows; then every acknowledged append is in the log once with
 * dense versions per stream, nothing else is, every conflict was real, and the follower saw every
 * record once in seq order. Optionally the follower is SIGKILLed mid-run and a new one, started
 * after the last seq the killed one printed, sees the rest: the two together saw the log exactly.
 * Optionally the server is restarted mid-run (`outage`): the children survive it (journalChild's
 * `retry` mode), every acknowledged append is still there, appends whose outcome was unknown are
 * stored at most once, and the follower resumes exactly after the last record it printed.
 */
import { Context, Effect, Fiber, Layer, type Scope, Stream } from "effect"
import assert from "node:assert/strict"
import { Journal } from "../../src/index.ts"
import { type RunningChild, spawnChild, withTimeout } from "./childProcess.ts"

/** What `appendWhileFollowing` runs over. */
export interface ProcessesScenario {
  /** The backend arguments of journalChild: `["postgres", url, schema]`, `["redis", url, prefix]` or `["nats", url, prefix]`. */
  readonly backend: ReadonlyArray<string>
  /** A Journal over the same store, built after the run to read the log. */
  readonly journal: Layer.Layer<Journal.Journal, unknown>
  /** SIGKILL the follower once it has printed this many records, then follow on in a new process. */
  readonly killFollowerAfter?: number | undefined
  /** How long each writer fiber pauses after each append (default 0), so that appends go on past the kill. */
  readonly pauseMs?: number | undefined
  /** Runs `run` (a server restart) once the writers have acknowledged `afterAcknowledged` appends. */
  readonly outage?: { readonly afterAcknowledged: number; readonly run: Effect.Effect<void, unknown> } | undefined
}

const PROCESSES = 4
const FIBERS = 4
const APPENDS = 15
const STREAMS = 6
/** How long after the last writer the follower may end (it has at most the last few records to read). */
const FOLLOWER_LAG_MS = 10_000

/** `promise` as an Effect, failing the test naming `what` after `ms` (a hang is a failure, not a stuck run). */
const waitFor = <A>(what: string, ms: number, promise: Promise<A>) => Effect.promise(() => withTimeout(promise, ms, what))

/** The fields after `tag` of every line `child` printed starting with `tag`. */
const printed = (child: RunningChild, tag: string): Array<Array<string>> =>
  child.lines().filter((line) => line.startsWith(`${tag} `)).map((line) => line.split(" ").slice(1))

/** The number of appends `writers` have acknowledged so far. */
const acknowledged = (writers: ReadonlyArray<RunningChild>) => writers.reduce((n, writer) => n + printed(writer, "ok").length, 0)

/** The records a follower printed, as `seq id version`. */
const followed = (child: RunningChild): Array<string> => printed(child, "seq").map((fields) => fields.join(" "))

/** A follower process from `fromSeq` for `count` records (`mode`: journalChild's `retry` or nothing), once its journal is open. */
const startFollower = (backend: ReadonlyArray<string>, fromSeq: number, count: number, mode: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const child = yield* spawnChild("journalChild", [...backend, "follow", String(fromSeq), String(count), ...mode])
    yield* waitFor("the follower to open its journal", 60_000, child.line(/^ready$/))
    return child
  })

/** Waits until `child` has printed `count` records; dies if it ends first or takes over 120 s. */
const untilFollowed = (child: RunningChild, count: number) =>
  Effect.gen(function*() {
    while (followed(child).length < count) {
      if (child.child.exitCode !== null || child.child.signalCode !== null) {
        return yield* Effect.die(new Error(`the follower ended before printing ${count} records: ${child.stderr()}`))
      }
      yield* Effect.sleep(10)
    }
  }).pipe(Effect.timeoutOrElse({
    duration: 120_000,
    orElse: () => Effect.die(new Error(`the follower printed ${followed(child).length} of ${count} records in 120 s`))
  }))

/** Waits for `child` to exit with code 0. */
const exitsCleanly = (what: string, child: RunningChild) =>
  Effect.gen(function*() {
    const end = yield* waitFor(what, 120_000, child.closed)
    assert.equal(end.code, 0, `${what} failed (${end.signal ?? `code ${end.code}`}): ${child.stderr()}`)
  })

/**
 * SIGKILLs `follower` and starts another after the last seq it printed, for the records it did
 * not see; returns the new follower and the records the killed one printed (`before`).
 */
const killAndResume = (backend: ReadonlyArray<string>, follower: RunningChild, writers: ReadonlyArray<RunningChild>, total: number, mode: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const acknowledgedBefore = acknowledged(writers)
    follower.child.kill("SIGKILL")
    const end = yield* waitFor("the killed follower to end", 30_000, follower.closed)
    assert.equal(end.signal, "SIGKILL", `the follower was killed, not ended: ${follower.stderr()}`)
    assert.ok(acknowledgedBefore < total, `the writers were still appending when the follower was killed (${acknowledgedBefore} of ${total})`)
    const seen = followed(follower)
    assert.ok(seen.length < total, `the follower was killed mid-run (it had seen ${seen.length} of ${total})`)
    const lastSeq = Number(seen[seen.length - 1]!.split(" ")[0])
    const next = yield* startFollower(backend, lastSeq + 1, total - seen.length, mode)
    return { follower: next, before: seen }
  })

/** Runs `outage.run` once every writer is open and they have acknowledged `outage.afterAcknowledged` appends, and checks it came mid-run. */
const outageMidRun = (outage: NonNullable<ProcessesScenario["outage"]>, writers: ReadonlyArray<RunningChild>, total: number) =>
  Effect.gen(function*() {
    for (const writer of writers) yield* waitFor("a writer to open its journal", 60_000, writer.line(/^ready$/))
    while (acknowledged(writers) < outage.afterAcknowledged) {
      const ended = writers.find((writer) => writer.child.exitCode !== null || writer.child.signalCode !== null)
      if (ended !== undefined) return yield* Effect.die(new Error(`a writer ended before the outage: ${ended.stderr()}`))
      yield* Effect.sleep(10)
    }
    yield* outage.run
    assert.ok(acknowledged(writers) < total, `the writers were still appending after the outage (${acknowledged(writers)} of ${total})`)
  })

/** A record of the log, with its payload (`<process>/<fiber>/<attempt>`). */
interface Logged {
  readonly seq: number
  readonly id: string
  readonly version: number
  readonly payload: string
}

/** Asserts the outcome of a run (see the module doc) from what the children printed, what the followers saw, and the log. */
const checkOutcome = (writers: ReadonlyArray<RunningChild>, total: number, seen: ReadonlyArray<string>, log: ReadonlyArray<Logged>) => {
  const successes = writers.flatMap((w) => printed(w, "ok")).map(([id, expected, seq, version]) => ({
    id: id!,
    expected: Number(expected),
    seq: Number(seq),
    version: Number(version)
  }))
  const conflicts = writers.flatMap((w) => printed(w, "conflict")).map(([id, expected, actual]) => ({
    id: id!,
    expected: Number(expected),
    actual: Number(actual)
  }))
  const unknowns = writers.flatMap((w) => printed(w, "unknown")).map(([id, expected, payload]) => ({ id: id!, expected: Number(expected), payload: payload! }))
  assert.equal(successes.length, total)
  assert.equal(new Set(successes.map((s) => s.seq)).size, total, "every acknowledged seq is unique")
  for (const s of successes) assert.equal(s.version, s.expected + 1)
  const lines = log.map((r) => `${r.seq} ${r.id} ${r.version}`)
  assert.ok(log.every((r, i) => i === 0 || r.seq > log[i - 1]!.seq), "the log is in seq order")
  // Every acknowledged append is in the log as it was acknowledged ...
  const inLog = new Map(log.map((r, i) => [r.seq, lines[i]!]))
  const acknowledgedSeqs = new Set(successes.map((s) => s.seq))
  for (const s of successes) assert.equal(inLog.get(s.seq), `${s.seq} ${s.id} ${s.version}`, `acknowledged seq ${s.seq}`)
  // ... and besides them only appends whose outcome was unknown, each stored at most once (a payload is one attempt's).
  assert.equal(new Set(log.map((r) => r.payload)).size, log.length, "no attempt is stored twice")
  for (const [i, r] of log.entries()) {
    if (acknowledgedSeqs.has(r.seq)) continue
    const unknown = unknowns.some((u) => u.payload === r.payload && u.id === r.id && u.expected + 1 === r.version)
    assert.ok(unknown, `${lines[i]} (${r.payload}) was neither acknowledged nor an append whose outcome was unknown`)
  }
  // Versions dense per stream, rising with seq.
  const versions = new Map<string, number>()
  for (const [i, r] of log.entries()) {
    assert.equal(r.version, (versions.get(r.id) ?? 0) + 1, `the version of ${lines[i]}`)
    versions.set(r.id, r.version)
  }
  // The follower (or the killed one, then the one after it) saw every record once, in seq order.
  assert.deepEqual(seen, lines)
  // Every conflict was real: another append took the version it expected to write.
  const taken = new Set(log.map((r) => `${r.id} ${r.version}`))
  for (const c of conflicts) {
    assert.ok(c.actual > c.expected && taken.has(`${c.id} ${c.expected + 1}`), `conflict ${JSON.stringify(c)}`)
  }
}

/**
 * Runs the scenario (see the module doc) and asserts its outcome; the child processes are killed
 * when the scope closes if they are still running.
 */
export const appendWhileFollowing = (scenario: ProcessesScenario): Effect.Effect<void, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const total = PROCESSES * FIBERS * APPENDS
    const mode = scenario.outage === undefined ? [] : ["retry"]
    const first = yield* startFollower(scenario.backend, 0, total, mode)
    const writers = yield* Effect.forEach(Array.from({ length: PROCESSES }, (_, p) => p), (p) =>
      spawnChild("journalChild", [...scenario.backend, "append", ...[p, FIBERS, APPENDS, STREAMS, scenario.pauseMs ?? 0].map(String), ...mode]))
    const outage = scenario.outage === undefined ? undefined : yield* Effect.forkChild(outageMidRun(scenario.outage, writers, total))
    const { follower, before } = scenario.killFollowerAfter === undefined
      ? { follower: first, before: [] }
      : yield* Effect.andThen(untilFollowed(first, scenario.killFollowerAfter), killAndResume(scenario.backend, first, writers, total, mode))
    for (const writer of writers) yield* exitsCleanly("a writer", writer)
    const writersDone = Date.now()
    yield* exitsCleanly("the follower", follower)
    // Followers are woken by new messages, also after an outage: the follower keeps up with the writers.
    const lag = Date.now() - writersDone
    assert.ok(lag < FOLLOWER_LAG_MS, `the follower ended ${lag} ms after the writers`)
    if (outage !== undefined) yield* Fiber.join(outage)
    const journal = Context.get(yield* Layer.build(scenario.journal), Journal.Journal)
    const log = (yield* Stream.runCollect(journal.replayFrom(0))).map((r) => ({ seq: r.seq, id: r.id, version: r.version, payload: new TextDecoder().decode(r.payload) }))
    checkOutcome(writers, total, [...before, ...followed(follower)], log)
  })
