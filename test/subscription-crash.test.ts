/**
 * A Subscription under SIGKILL, over a FileJournal (durability "always") and a FileCursorStore: a
 * child process (`support/subscriptionChild.ts`) appends records and runs a subscription whose
 * handler writes its side effect (the seqs of each batch) to a file before it returns.
 *
 * - random kills: the child is killed at seeded random moments, some before its first batch (while
 *   it waits for the dead predecessor's lease), some right after it (often before its commit),
 *   most while it applies and appends; a last child runs to `awaitCaughtUp`. From the side-effect
 *   file, the cursor read between the runs and the journal: each child starts exactly after the
 *   cursor it found, applies the journal's records in order without a gap, leaves a cursor that is
 *   the end of one of its batches (never ahead of what it applied), every record is applied at
 *   least once, and the final cursor is lastSeq;
 * - a kill in the window between apply and commit: the child kills itself inside the handler
 *   right after the side effect of a chosen seq, so the next child must deliver it again.
 *
 * Seeded and repeatable: ANNALS_CRASH_SEED changes the seed, ANNALS_CRASH_RUNS the number of
 * killed children (default 10). Every assertion message carries the seed.
 */
import { Effect, Option, type Scope, Stream } from "effect"
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { FileCursorStore, FileJournal } from "../src/file/index.ts"
import { type RunningChild, spawnChild, withTimeout } from "./support/childProcess.ts"
import { prng } from "./support/ledger.ts"
import { parseSideEffects, type Section, sectionSeqs, SUBSCRIPTION_NAME } from "./support/subscriptionEffects.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

const SEED = Number(process.env["ANNALS_CRASH_SEED"] ?? 20_240_612)
const RUNS = Number(process.env["ANNALS_CRASH_RUNS"] ?? 10)
/** Records in the journal at the end of the random-kill test. */
const TOTAL = 1500
/** Longest wait for a child's line or exit. */
const CHILD_TIMEOUT_MS = 30_000

// ---------------------------------------------------------------------------------------------
// The child process and the stores it leaves behind

/** Where a test keeps its stores and the side-effect file. */
interface Workspace {
  readonly journal: string
  readonly cursors: string
  readonly effects: string
}

const workspace = (prefix: string): Effect.Effect<Workspace, never, Scope.Scope> =>
  Effect.map(tempDirectory(prefix), (root) => ({
    journal: path.join(root, "journal"),
    cursors: path.join(root, "cursors"),
    effects: path.join(root, "effects.log")
  }))

type Running = RunningChild

/** What a child does: see `support/subscriptionChild.ts`. */
interface ChildPlan {
  readonly total: number
  readonly seed: number
  readonly maxRecords: number
  readonly paceMs: number
  readonly handleMs: number
  readonly mode: "run" | "finish" | `kill-at:${number}`
}

/** Starts a child on `space`; it is SIGKILLed (if still running) when the scope closes. */
const spawnPlan = (space: Workspace, plan: ChildPlan): Effect.Effect<Running, never, Scope.Scope> =>
  spawnChild("subscriptionChild", [
    space.journal,
    space.cursors,
    space.effects,
    String(plan.total),
    String(plan.seed),
    String(plan.maxRecords),
    String(plan.paceMs),
    String(plan.handleMs),
    plan.mode
  ])

/** Waits for the child's first line matching `pattern` (bounded), failing with `context` and its stderr. */
const awaitLine = (running: Running, pattern: RegExp, context: string) =>
  Effect.tryPromise({
    try: () => withTimeout(running.line(pattern), CHILD_TIMEOUT_MS, `the child's line ${pattern}`),
    catch: (error) => new Error(`${context}: ${String(error)}; stderr: ${running.stderr()}`)
  })

/** Waits for the child to end; checks that it ended the way `expected` says. */
const awaitExit = (running: Running, expected: "SIGKILL" | 0, context: string) =>
  Effect.gen(function*() {
    const exit = yield* Effect.tryPromise({
      try: () => withTimeout(running.closed, CHILD_TIMEOUT_MS, "the child to end"),
      catch: (error) => new Error(`${context}: ${String(error)}; stderr: ${running.stderr()}`)
    })
    const ok = expected === "SIGKILL" ? exit.signal === "SIGKILL" : exit.code === 0
    assert.ok(ok, `${context}: the child should end with ${expected}, but ended with code ${exit.code}, signal ${exit.signal}; stderr: ${running.stderr()}`)
  })

/** The subscription's committed cursor (0 if none), read while no child runs. */
const readCursor = (space: Workspace) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* FileCursorStore.make({ directory: space.cursors })
    return Option.match(yield* store.get(SUBSCRIPTION_NAME), { onNone: () => 0, onSome: (cursor) => cursor.seq })
  }))

/** The seqs the journal holds, in order, read while no child runs. */
const journalSeqs = (space: Workspace) =>
  Effect.scoped(Effect.gen(function*() {
    const journal = yield* FileJournal.make({ directory: space.journal, durability: "always" })
    const seqs = (yield* Stream.runCollect(journal.replayFrom(1))).map((record) => record.seq)
    assert.equal(yield* journal.lastSeq, seqs[seqs.length - 1] ?? 0, `lastSeq of ${space.journal}`)
    return seqs
  }))

const readSections = (space: Workspace) => parseSideEffects(fs.readFileSync(space.effects, "utf8"), space.effects)

// ---------------------------------------------------------------------------------------------
// The checks

/** One child as the parent saw it: its pid and the cursor before it started and after it ended. */
interface Run {
  readonly pid: number
  readonly cursorBefore: number
  readonly cursorAfter: number
}

/**
 * Checks the side effects of `runs` (in order) against the journal's `seqs`: at-least-once, in
 * order, nothing skipped, and the cursor never ahead of what was applied. Returns how many
 * records were applied more than once.
 */
const checkSections = (sections: ReadonlyArray<Section>, runs: ReadonlyArray<Run>, seqs: ReadonlyArray<number>, context: string) => {
  assert.deepEqual(sections.map((s) => s.pid), runs.map((r) => r.pid), `${context}: one section per child, in order`)
  const position = new Map(seqs.map((seq, i) => [seq, i]))
  const firstAfter = (cursor: number) => seqs.find((seq) => seq > cursor)
  const applied = new Map<number, number>()
  let previousLast: number | undefined
  sections.forEach((section, i) => {
    const run = runs[i]!
    const where = `${context}, child ${i + 1} of ${runs.length} (pid ${run.pid}, cursor ${run.cursorBefore} before, ${run.cursorAfter} after)`
    const mine = sectionSeqs(section)
    mine.forEach((seq, j) => {
      assert.ok(position.has(seq), `${where}: applied seq ${seq}, which the journal does not hold`)
      applied.set(seq, (applied.get(seq) ?? 0) + 1)
      if (j > 0) {
        const expected = seqs[position.get(mine[j - 1]!)! + 1]
        assert.equal(seq, expected, `${where}: after seq ${mine[j - 1]} it applied seq ${seq}, not the journal's next seq ${expected}`)
      }
    })
    if (mine.length > 0) {
      assert.equal(mine[0], firstAfter(run.cursorBefore), `${where}: the first seq it applied is not the one right after its cursor`)
      if (previousLast !== undefined) {
        assert.ok(mine[0]! <= previousLast + 1, `${where}: started at seq ${mine[0]}, past the seq after the last one applied before (${previousLast})`)
      }
      previousLast = mine[mine.length - 1]
    }
    assert.ok(run.cursorAfter >= run.cursorBefore, `${where}: the cursor moved back`)
    const batchEnds = new Set(section.batches.map((batch) => batch[batch.length - 1]))
    assert.ok(
      run.cursorAfter === run.cursorBefore || batchEnds.has(run.cursorAfter),
      `${where}: the cursor it left is not the end of one of its batches (committed before applying?)`
    )
  })
  const missing = seqs.filter((seq) => !applied.has(seq))
  assert.deepEqual(missing.slice(0, 20), [], `${context}: ${missing.length} seqs of the journal were never applied`)
  return [...applied.values()].filter((n) => n > 1).length
}

// ---------------------------------------------------------------------------------------------
// 1. Random kills

/** One killed child: spawn it, kill it at a seeded moment, read the cursor it left. */
const killRun = (space: Workspace, run: number, cursorBefore: number) =>
  Effect.scoped(Effect.gen(function*() {
    const seed = SEED + 1000 + run
    const random = prng(seed)
    const maxRecords = random() < 0.3 ? 1 + Math.floor(random() * 3) : 1 + Math.floor(random() * 50)
    const handleMs = Math.floor(random() * 8)
    // A quarter soon after start (some while waiting for the dead predecessor's lease), a quarter
    // right after the first batch (often before its commit), the rest later.
    const moment = random()
    const early = moment < 0.25
    const delay = Math.floor(random() * (early ? 300 : moment < 0.5 ? 25 : 400))
    const total = Math.round((TOTAL * (run + 1)) / (RUNS + 1))
    const context = `seed ${SEED}, run ${run} (seed ${seed}, maxRecords ${maxRecords}, handler ${handleMs} ms, killed ${delay} ms after ${
      early ? "it was ready" : "its first batch"
    }, appending up to ${total})`
    const running = yield* spawnPlan(space, { total, seed, maxRecords, paceMs: 30, handleMs, mode: "run" })
    yield* awaitLine(running, early ? /^ready$/ : /^applied \d+$/, context)
    yield* Effect.sleep(delay)
    running.child.kill("SIGKILL")
    yield* awaitExit(running, "SIGKILL", context)
    return { pid: running.child.pid!, cursorBefore, cursorAfter: yield* readCursor(space) } satisfies Run
  }))

/** The last child: runs until the subscription caught up with `total` records and exits. */
const finishRun = (space: Workspace, plan: Omit<ChildPlan, "mode" | "paceMs" | "handleMs">, cursorBefore: number, context: string) =>
  Effect.scoped(Effect.gen(function*() {
    const running = yield* spawnPlan(space, { ...plan, paceMs: 0, handleMs: 0, mode: "finish" })
    const done = yield* awaitLine(running, /^done (\d+) (\d+)$/, context)
    yield* awaitExit(running, 0, context)
    assert.deepEqual([Number(done[1]), Number(done[2])], [plan.total, plan.total], `${context}: the last child's cursor and lastSeq`)
    return { pid: running.child.pid!, cursorBefore, cursorAfter: yield* readCursor(space) } satisfies Run
  }))

test(`Subscription crash: SIGKILL at ${RUNS} random moments while appending and applying; every record applied at least once, in order, none skipped`, () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const space = yield* workspace("subscription-kill")
    const runs: Array<Run> = []
    for (let run = 0; run < RUNS; run++) {
      runs.push(yield* killRun(space, run, runs[runs.length - 1]?.cursorAfter ?? 0))
    }
    const context = `seed ${SEED}`
    const last = yield* finishRun(space, { total: TOTAL, seed: SEED, maxRecords: 50 }, runs[runs.length - 1]!.cursorAfter, `${context}, the last child`)
    runs.push(last)
    const seqs = yield* journalSeqs(space)
    assert.equal(seqs[seqs.length - 1], TOTAL, `${context}: lastSeq`)
    assert.equal(last.cursorAfter, TOTAL, `${context}: the final cursor is lastSeq`)
    const again = checkSections(readSections(space), runs, seqs, context)
    const applying = runs.filter((r) => r.cursorAfter > r.cursorBefore).length
    assert.ok(applying >= RUNS / 3, `${context}: only ${applying} of ${runs.length} children committed anything: the kills came too early to test much`)
    process.stdout.write(`# seed ${SEED}: ${RUNS} kills, ${applying} of ${runs.length} children committed, ${again} of ${seqs.length} records applied twice or more\n`)
  }))))

// ---------------------------------------------------------------------------------------------
// 2. A kill between apply and commit

for (const { maxRecords, seq } of [{ maxRecords: 1, seq: 23 }, { maxRecords: 8, seq: 37 }]) {
  test(`Subscription crash: killed inside the handler right after the side effect of seq ${seq} (maxRecords ${maxRecords}), the next child delivers it again`, () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const total = 60
      const context = `seed ${SEED}, kill at seq ${seq}, maxRecords ${maxRecords}`
      const space = yield* workspace("subscription-window")
      const killed = yield* Effect.scoped(Effect.gen(function*() {
        // The handler waits before its side effect, so the committer runs meanwhile: with a
        // synchronous handler a commit made before applying would never show (checked by hand).
        const running = yield* spawnPlan(space, { total, seed: SEED, maxRecords, paceMs: 0, handleMs: 20, mode: `kill-at:${seq}` })
        yield* awaitExit(running, "SIGKILL", `${context}, the first child`)
        return { pid: running.child.pid!, cursorBefore: 0, cursorAfter: yield* readCursor(space) } satisfies Run
      }))
      assert.ok(killed.cursorAfter < seq, `${context}: the cursor ${killed.cursorAfter} passed seq ${seq}, whose handler never returned`)
      const last = yield* finishRun(space, { total, seed: SEED + 1, maxRecords }, killed.cursorAfter, `${context}, the second child`)
      const sections = readSections(space)
      checkSections(sections, [killed, last], yield* journalSeqs(space), context)
      assert.deepEqual(
        sections.map((section) => sectionSeqs(section).filter((s) => s === seq).length),
        [1, 1],
        `${context}: seq ${seq} applied once by each child`
      )
      assert.equal(sections[0]!.batches.at(-1)!.includes(seq), true, `${context}: the first child died in the batch of seq ${seq}`)
      assert.ok(last.cursorAfter >= seq, `${context}: the cursor after the second child passed seq ${seq}`)
    }))))
}
