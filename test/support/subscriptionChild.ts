/**
 * The child process of the Subscription crash test. It appends `start <pid>` to the side-effect
 * file, opens a FileJournal (durability "always") and a FileCursorStore, and then, together:
 *
 * - appends the crash workload's events from one fiber (1 to 3 per append, a random pause of up
 *   to `paceMs` between appends) until the journal's lastSeq reaches `total`, continuing from
 *   what earlier children left;
 * - runs the Subscription `SUBSCRIPTION_NAME` (lease ttl 1 s, batches of at most `maxRecords`) whose
 *   handler first waits `handleMs` (as a handler doing I/O would: the subscription's other fibers,
 *   its committer among them, run meanwhile), then appends `apply <seqs…>` to the side-effect file
 *   (synchronously, so it is on disk before the handler returns) and prints `applied <last seq>`.
 *
 * Modes: `run` runs until killed; `finish` waits for the appends, then for the subscription to
 * catch up, prints `done <cursor> <lastSeq>` and exits 0; `kill-at:<seq>` SIGKILLs itself inside
 * the handler right after writing the side effect of the batch that holds `seq` (before the
 * subscription can commit it).
 *
 * Usage: subscriptionChild <journal dir> <cursor dir> <side-effect file> <total> <seed> <maxRecords> <paceMs> <handleMs> <mode>
 * Prints `ready` once both stores are open. Exits by itself (code 0) after 60 s in case the parent
 * is gone; any failure exits with code 3.
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import process from "node:process"
import { FileCursorStore, FileJournal } from "../../src/file/index.ts"
import { Journal } from "../../src/Journal.ts"
import * as Subscription from "../../src/Subscription.ts"
import { crashEvent, crashStreams } from "./crashWorkload.ts"
import { prng } from "./ledger.ts"
import { formatApply, formatStart, SUBSCRIPTION_NAME } from "./subscriptionEffects.ts"

const [journalDirectory, cursorDirectory, effectsFile, totalText, seedText, maxRecordsText, paceText, handleText, mode] = process.argv.slice(2)
if (mode === undefined || !/^(run|finish|kill-at:\d+)$/.test(mode)) {
  process.stderr.write(
    "usage: subscriptionChild <journal dir> <cursor dir> <side-effect file> <total> <seed> <maxRecords> <paceMs> <handleMs> <run|finish|kill-at:SEQ>\n"
  )
  process.exit(2)
}
const total = Number(totalText)
const random = prng(Number(seedText))
const paceMs = Number(paceText)
const handleMs = Number(handleText)
const killAt = mode.startsWith("kill-at:") ? Number(mode.slice("kill-at:".length)) : undefined

const LIFETIME_MS = 60_000

fs.appendFileSync(effectsFile!, formatStart(process.pid))

/** Appends the workload until the journal's lastSeq reaches `total`. */
const appendAll = Effect.gen(function*() {
  const journal = yield* Journal
  const versions = yield* Effect.forEach(crashStreams, (stream) => journal.version(stream))
  let lastSeq = yield* journal.lastSeq
  while (lastSeq < total) {
    const k = Math.floor(random() * crashStreams.length)
    const stream = crashStreams[k]!
    const count = Math.min(total - lastSeq, 1 + Math.floor(random() * 3))
    const events = Array.from({ length: count }, (_, i) => crashEvent(stream, versions[k]! + i + 1))
    const result = yield* journal.append(stream, versions[k]!, events)
    versions[k] = result.version
    lastSeq = result.lastSeq
    if (paceMs > 0) yield* Effect.sleep(Math.floor(random() * paceMs))
  }
})

const program = Effect.scoped(Effect.gen(function*() {
  const journal = yield* Journal
  process.stdout.write("ready\n")
  const subscription = yield* Subscription.make({
    name: SUBSCRIPTION_NAME,
    batch: { maxRecords: Number(maxRecordsText) },
    // Long enough that a loaded machine (the test runners of a CI run) does not delay a renewal past it: an
    // instance that loses its lease takes it again and delivers from its cursor, which the test counts
    // as a record applied out of order within one child.
    lease: { ttlMs: 1_000 },
    retry: { times: 0 },
    handle: (records) =>
      Effect.andThen(Effect.sleep(handleMs), Effect.sync(() => {
        const seqs = records.map((record) => record.seq)
        fs.appendFileSync(effectsFile!, formatApply(seqs))
        if (killAt !== undefined && seqs.includes(killAt)) process.kill(process.pid, "SIGKILL")
        process.stdout.write(`applied ${seqs[seqs.length - 1]}\n`)
      }))
  })
  if (mode !== "finish") {
    yield* Effect.forkScoped(appendAll)
    return yield* Effect.raceFirst(subscription.await, Effect.sleep(LIFETIME_MS))
  }
  yield* appendAll
  const status = yield* subscription.awaitCaughtUp
  process.stdout.write(`done ${status.cursor} ${yield* journal.lastSeq}\n`)
})).pipe(
  Effect.provide(Layer.merge(
    FileJournal.layer({ directory: journalDirectory!, durability: "always" }),
    FileCursorStore.layer({ directory: cursorDirectory! })
  ))
)

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`subscriptionChild failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
    process.exit(3)
  }
)
