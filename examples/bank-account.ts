/**
 * A bank account, event-sourced with annals: typed commands with a domain error, two writers racing
 * on one account (optimistic concurrency with automatic retry), automatic snapshots, a checkpoint
 * that archives and truncates the journal, and a statement "as of" a past date read back from the
 * archive. The data goes to the file layers in a fresh temporary directory, removed at the end
 * (`--keep` keeps it) — or wherever ANNALS_STORE and ANNALS_ARCHIVE say (section 4): one variable
 * moves it to PostgreSQL and S3 without touching the domain.
 *
 * Runs unchanged on all three runtimes (`npm start` is the first):
 *
 *   npx bun examples/bank-account.ts
 *   npx deno run -A examples/bank-account.ts
 *   npx tsc -p tsconfig.node.json && node --conditions=annals-repo .build/node/examples/bank-account.js
 *
 * Time is simulated with Effect's TestClock (a calendar we move by hand), so the dates printed and
 * the time-travel query give the same output on every run; the example says so when it starts.
 */
import { Archive, Archiver, Checkpointer, Journal, Repository, SnapshotStore, Stores } from "annals"
import { Config, Console, Deferred, Effect, Layer, Option } from "effect"
import { TestClock } from "effect/testing"
import { type AccountClosed, type AccountCommand, type AccountEvent, BankAccount, deposit, type InsufficientFunds, open, withdraw } from "./domain/bankAccount.ts"
import { dataDirectory } from "./support/dataDirectory.ts"

// ─── 1. The domain ──────────────────────────────────────────────────────────────────────────────
// Events, state, the aggregate, commands and domain errors live in ./domain/bankAccount.ts (tested
// with annals/testing in test/examples.test.ts); this file adds the storage and the story.
const describe = (event: AccountEvent) =>
  event._tag === "Opened" ? `opened by ${event.owner}` : `${event.memo} ${event._tag === "Deposited" ? "+" : "-"}${event.amount}`

// ─── 2. A simulated calendar ────────────────────────────────────────────────────────────────────
const day = (n: number, hour = 9) => Date.UTC(2025, 2, n, hour) // March 2025
const showDate = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace("T", " ")
const today = (n: number) => Effect.andThen(TestClock.setTime(day(n)), Console.log(`\n── ${showDate(day(n))} ──`))

// ─── 3. The program ─────────────────────────────────────────────────────────────────────────────
const program = Effect.gen(function*() {
  const accounts = yield* Repository.make(BankAccount)
  const snapshots = yield* SnapshotStore.SnapshotStore
  const journal = yield* Journal.Journal

  yield* today(1)
  yield* accounts.execute("alice", open("Alice"))
  const opened = yield* accounts.execute("alice", deposit(100, "opening deposit"))
  yield* Console.log(`Alice opens her account and deposits 100: balance ${opened.state.balance}, version ${opened.version}`)

  // A domain error: the command refuses, nothing is appended, the error is typed.
  yield* today(2)
  const refused = yield* accounts.execute("alice", withdraw(500, "new bike")).pipe(
    Effect.catchTag("InsufficientFunds", (error) => Effect.succeed(`refused (${error.message})`))
  )
  yield* Console.log(`Alice tries to withdraw 500: ${typeof refused === "string" ? refused : "accepted?!"}`)
  yield* Console.log(`  the stream is still at version ${yield* journal.version({ namespace: "account", id: "alice" })}`)

  // Two writers at once: a branch teller and an ATM, each with its own Repository (think: two
  // servers) over the same journal. Both see a balance of 100; the ATM commits first.
  yield* today(3)
  const teller = yield* Repository.make(BankAccount)
  const atm = yield* Repository.make(BankAccount)
  const tellerSaw = yield* Deferred.make<void>()
  const atmCommitted = yield* Deferred.make<void>()
  let tellerAttempts = 0
  const tellerWithdraws = teller.execute("alice", (account) =>
    Effect.gen(function*() {
      tellerAttempts++
      yield* Console.log(`  teller, attempt ${tellerAttempts}: sees balance ${account.balance}, wants to pay out 70`)
      if (tellerAttempts === 1) {
        // The teller is slow: the ATM, which starts once the teller has seen the account, gets in first.
        yield* Deferred.succeed(tellerSaw, undefined)
        yield* Deferred.await(atmCommitted)
      }
      return yield* withdraw(70, "cash at the branch")(account)
    })).pipe(
      Effect.map((done) => `teller paid out 70, balance ${done.state.balance}`),
      Effect.catchTag("InsufficientFunds", (error) => Effect.succeed(`teller refused: ${error.message}`))
    )
  const atmWithdraws = Deferred.await(tellerSaw).pipe(
    Effect.andThen(atm.execute("alice", withdraw(60, "ATM"))),
    Effect.tap((done) => Console.log(`  ATM pays out 60: balance ${done.state.balance}, version ${done.version}`)),
    Effect.andThen(Deferred.succeed(atmCommitted, undefined))
  )
  yield* Console.log("The teller and the ATM both try to withdraw at the same time:")
  const [tellerOutcome] = yield* Effect.all([tellerWithdraws, atmWithdraws], { concurrency: "unbounded" })
  yield* Console.log(`  → ${tellerOutcome}`)
  yield* Console.log(
    "  The teller's append expected version 2 but the ATM had made it 3: a VersionConflict. The Repository\n" +
      "  reloaded and ran the command again on the fresh state, where the rules said no. No overdraft."
  )

  // The rest of the month. Every 5th event the Repository saves a snapshot by itself, so loading
  // the account never folds more than 4 events on top of the latest snapshot.
  yield* Console.log("")
  const month: ReadonlyArray<readonly [date: number, command: AccountCommand<InsufficientFunds | AccountClosed>]> = [
    [5, deposit(2_000, "salary")],
    [6, withdraw(4, "coffee")],
    [7, withdraw(35, "groceries")],
    [8, withdraw(4, "coffee")],
    [9, withdraw(900, "rent")],
    [10, deposit(50, "refund")],
    [10, withdraw(120, "concert")]
  ]
  for (const [date, command] of month) {
    yield* TestClock.setTime(day(date))
    const done = yield* accounts.execute("alice", command)
    const latest = yield* snapshots.get("account", "alice")
    const saved = Option.isSome(latest) && latest.value.version === done.version
    yield* Console.log(
      `${showDate(day(date))}  ${done.events.map(describe).join(", ").padEnd(16)}  balance ${String(done.state.balance).padStart(5)}` +
        `  version ${String(done.version).padStart(2)}${saved ? "  ← snapshot saved" : ""}`
    )
  }
  const midMonth = day(9, 12)

  // Compaction: snapshot every stream touched since the last checkpoint, archive the records,
  // then truncate the journal. The history is not lost: it now lives in the archive.
  yield* today(11)
  const checkpointer = yield* Checkpointer.make([BankAccount], { history: "archive" })
  const result = yield* checkpointer.run
  yield* Console.log(
    `Checkpoint: moved from seq ${result.from} to ${result.checkpoint}, ${result.streams} stream(s) touched, ${result.snapshots} snapshot(s) written, ` +
      `archived through seq ${Option.getOrElse(result.archivedThrough, () => 0)}, ` +
      `${result.heldBack.length} namespace(s) held back`
  )
  const archiver = yield* Archiver.Archiver
  const status = yield* archiver.status
  const segments = yield* (yield* Archive.Archive).list()
  yield* Console.log(
    `The journal's checkpoint is now ${yield* journal.checkpoint}; the archive holds ${segments.length} segment(s) ` +
      `through seq ${status.archivedThrough}, ${status.pendingSeqs} seq(s) pending.`
  )

  // A fresh Repository (an empty cache, say after a restart) loads from the snapshot alone.
  const afterRestart = yield* (yield* Repository.make(BankAccount)).load("alice")
  yield* Console.log(`After a restart: balance ${afterRestart.state.balance} at version ${afterRestart.version}`)

  // Time travel: the statement as of a past moment. Those records were truncated from the journal,
  // and no snapshot is that old, so the Repository reads them back from the archive.
  yield* Console.log("Statements of past dates, rebuilt from the archive:")
  for (const asOf of [day(1, 23), day(3, 23), midMonth]) {
    const past = yield* accounts.load("alice", { asOf })
    yield* Console.log(`  as of ${showDate(asOf)}: balance ${past.state.balance} after ${past.state.transactions} transaction(s), version ${past.version}`)
  }
})

// ─── 4. Wiring: the storage the environment names ───────────────────────────────────────────────
// Stores.layerConfig reads ANNALS_STORE and ANNALS_ARCHIVE. Unset, the file layers run in a fresh
// temporary directory, so that every run starts from nothing; ANNALS_STORE=postgres://… (a fresh
// schema: `?schema=bank`) with ANNALS_ARCHIVE=s3://bucket/bank/ runs the same program on PostgreSQL
// and S3, with no change to this file.
const layers = (data: string) =>
  // The Archiver uploads every 4 records as a segment in the background; the Checkpointer flushes the
  // rest. It looks for full segments every hour of simulated time: under the TestClock its background
  // fiber wakes once per interval the calendar moves, so a 1-second interval would wake it 86,400 times a day.
  Archiver.layer({ segmentSize: 4, pollInterval: "1 hour" }).pipe(Layer.provideMerge(Stores.layerConfig({ store: data })))

const main = Effect.gen(function*() {
  const data = yield* dataDirectory("bank")
  const store = yield* Config.option(Config.String("ANNALS_STORE"))
  if (Option.isSome(store)) yield* Console.log(`ANNALS_STORE is set: the data goes to ${store.value.replace(/\/\/([^:@/]*):.*@/, "//$1:***@")} instead`)
  yield* Console.log(
    "The clock is simulated (Effect's TestClock): the dates below are a calendar this example moves by hand,\n" +
      "and they are the timestamps the journal records."
  )
  yield* TestClock.setTime(day(1, 8)) // set the calendar before the services start (the clock begins at 1970)
  yield* program.pipe(Effect.provide(layers(data)))
})

Effect.runPromise(main.pipe(Effect.scoped, Effect.provide(TestClock.layer())))
