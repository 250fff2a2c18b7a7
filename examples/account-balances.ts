/**
 * A read model kept by a Subscription: the balance of every owner (an owner may hold several
 * accounts), folded from the accounts' events into a table kept in a JSON file next to the
 * subscription's cursor. The example runs four "processes" one after the other, each opening the
 * file layers (journal, snapshots, cursors) and closing them all at its end:
 *
 * 1. the subscription catches up on the events already in the journal, then follows new ones live;
 * 2. a process dies after its handler wrote the table but before the subscription committed its
 *    cursor — the gap that at-least-once delivery leaves;
 * 3. the next process resumes after the cursor: the batch that died comes again, and the handler
 *    skips it, because the table remembers the last seq it applied (idempotence); only the new events
 *    are applied;
 * 4. a rebuild from scratch: the cursor (`CursorStore.delete`) and the table are deleted, the
 *    subscription replays the whole log and ends with the same table.
 *
 * Runs unchanged on all three runtimes, on the real clock (nothing printed depends on it); its data
 * goes to a fresh temporary directory, removed at the end (`--keep` keeps it):
 *
 *   npx bun examples/account-balances.ts
 *   npx deno run -A examples/account-balances.ts
 *   npx tsc -p tsconfig.node.json && node --conditions=annals-repo .build/node/examples/account-balances.js
 */
import { Aggregate, Codec, CursorStore, type Journal, Repository, Subscription } from "annals"
import { FileCursorStore, FileJournal, FileSnapshotStore } from "annals/file"
import { Console, Deferred, Effect, Layer, Option, Schema, type Scope } from "effect"
import { join } from "node:path"
import { dataDirectory } from "./support/dataDirectory.ts"
import { readJson, removeFile, writeJsonAtomically } from "./support/jsonFile.ts"

// ─── 1. The accounts ────────────────────────────────────────────────────────────────────────────
const AccountEvent = Schema.Union([
  Schema.TaggedStruct("Opened", { owner: Schema.String }),
  Schema.TaggedStruct("Deposited", { amount: Schema.Finite }),
  Schema.TaggedStruct("Withdrawn", { amount: Schema.Finite })
])
type AccountEvent = typeof AccountEvent.Type

const AccountState = Schema.Struct({ owner: Schema.String, balance: Schema.Finite })
type AccountState = typeof AccountState.Type

const Account = Aggregate.make({
  namespace: "account",
  event: AccountEvent,
  state: AccountState,
  initial: { owner: "", balance: 0 },
  evolve: (account, event) => {
    switch (event._tag) {
      case "Opened":
        return { ...account, owner: event.owner }
      case "Deposited":
        return { ...account, balance: account.balance + event.amount }
      case "Withdrawn":
        return { ...account, balance: account.balance - event.amount }
    }
  },
  snapshot: { every: 5, schemaVersion: 1 }
})

class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Finite,
  requested: Schema.Finite
}) {}

type AccountCommand = Aggregate.Command<AccountState, AccountEvent, InsufficientFunds>

const open = (owner: string): AccountCommand => (account) =>
  Effect.succeed(account.owner === "" ? [{ _tag: "Opened", owner }] : [])
const deposit = (amount: number): AccountCommand => () => Effect.succeed([{ _tag: "Deposited", amount }])
const withdraw = (amount: number): AccountCommand => (account) =>
  account.balance < amount
    ? Effect.fail(new InsufficientFunds({ balance: account.balance, requested: amount }))
    : Effect.succeed([{ _tag: "Withdrawn", amount }])

/** Runs the commands one after the other; returns how many events they appended. */
const runCommands = (commands: ReadonlyArray<readonly [account: string, command: AccountCommand]>) =>
  Effect.gen(function*() {
    const accounts = yield* Repository.make(Account)
    let events = 0
    for (const [id, command] of commands) events += (yield* accounts.execute(id, command)).events.length
    return events
  })

// ─── 2. The read model: balances by owner ───────────────────────────────────────────────────────
const Balances = Schema.Struct({
  /** Every record up to this seq is in the table: the handler's own cursor, stored with the table. */
  seq: Schema.Int,
  /** Account id → owner (a deposit names only its account). */
  owners: Schema.Record(Schema.String, Schema.String),
  /** Owner → the sum of the balances of their accounts. */
  balances: Schema.Record(Schema.String, Schema.Finite)
})
type Balances = typeof Balances.Type

const emptyTable: Balances = { seq: 0, owners: {}, balances: {} }

/** The table with one more event of account `id` folded in. */
const fold = (table: Balances, id: string, event: AccountEvent): Balances => {
  if (event._tag === "Opened") {
    return {
      ...table,
      owners: { ...table.owners, [id]: event.owner },
      balances: { ...table.balances, [event.owner]: table.balances[event.owner] ?? 0 }
    }
  }
  const owner = table.owners[id]!
  const change = event._tag === "Deposited" ? event.amount : -event.amount
  return { ...table, balances: { ...table.balances, [owner]: table.balances[owner]! + change } }
}

/** The table in `file` (an empty one when there is none yet). */
const loadTable = (file: string) =>
  Effect.flatMap(readJson(file), (json) => json === undefined ? Effect.succeed(emptyTable) : Schema.decodeUnknownEffect(Balances)(json))

/**
 * The subscription's handler over the table in `file`, and what it did. `afterWrite` runs after
 * each table write (the second process dies there).
 */
const balancesModel = (file: string, afterWrite: Effect.Effect<void> = Effect.void) =>
  Effect.gen(function*() {
    let table = yield* loadTable(file)
    const counts = { applied: 0, skipped: 0 }
    const handle = (records: ReadonlyArray<Journal.JournalRecord>) =>
      Effect.gen(function*() {
        // At-least-once: a batch applied before a crash is delivered again. The table says how far it
        // got, so the records at or below its seq are skipped — applying them twice would count twice.
        const fresh = records.filter((record) => record.seq > table.seq)
        counts.skipped += records.length - fresh.length
        if (fresh.length === 0) return
        let next = table
        for (const record of fresh) {
          next = fold(next, record.id, yield* Effect.fromResult(Codec.decodeRecord(Account.eventCodec, record)))
        }
        next = { ...next, seq: fresh[fresh.length - 1]!.seq }
        yield* writeJsonAtomically(file, next) // the balances and their seq change together, or not at all
        table = next
        counts.applied += fresh.length
        yield* afterWrite
      })
    return { handle, counts, table: () => table }
  })

/** The subscription that keeps the table: only the accounts' events reach its handler. */
const subscribe = (model: Effect.Success<ReturnType<typeof balancesModel>>) =>
  Subscription.make({ name: "balances", namespaces: ["account"], handle: model.handle })

const showTable = (table: Balances) =>
  Console.log(
    [`  Balances by owner, through seq ${table.seq}:`]
      .concat(Object.keys(table.balances).sort().map((owner) => `    ${owner.padEnd(6)} ${String(table.balances[owner]).padStart(5)}`))
      .join("\n")
  )

// ─── 3. Four processes, one after the other ─────────────────────────────────────────────────────
/** The file layers in `data`: opened when a process starts, closed (every lock given up) when it ends. */
const layers = (data: string) =>
  Layer.mergeAll(
    FileJournal.layer({ directory: join(data, "journal") }),
    FileSnapshotStore.layer({ directory: join(data, "snapshots") }),
    FileCursorStore.layer({ directory: join(data, "cursors") })
  )

/** Runs `body` as one process over the data in `data`: its own layers, closed at its end. */
const asProcess = <A, E>(
  data: string,
  title: string,
  body: Effect.Effect<A, E, Scope.Scope | Layer.Success<ReturnType<typeof layers>>>
) =>
  Effect.andThen(Console.log(`\n── ${title} ──`), body.pipe(Effect.scoped, Effect.provide(layers(data))))

const main = Effect.gen(function*() {
  const data = yield* dataDirectory("balances")
  const file = join(data, "balances.json")

  yield* asProcess(
    data,
    "1. The read model catches up, then follows live",
    Effect.gen(function*() {
      const before = yield* runCommands([
        ["alice-1", open("Alice")],
        ["alice-1", deposit(500)],
        ["bob-1", open("Bob")],
        ["bob-1", deposit(120)],
        ["alice-2", open("Alice")],
        ["alice-2", deposit(200)]
      ])
      yield* Console.log(`  ${before} events in the journal before the subscription starts`)
      const model = yield* balancesModel(file)
      const balances = yield* subscribe(model)
      const caughtUp = yield* balances.awaitCaughtUp
      yield* Console.log(`  Caught up: applied ${model.counts.applied} events, cursor ${caughtUp.cursor} of ${caughtUp.lastSeq}, ${caughtUp.state}`)
      const live = yield* runCommands([["bob-1", withdraw(45)], ["alice-1", withdraw(80)], ["carol-1", open("Carol")]])
      const following = yield* balances.awaitCaughtUp
      yield* Console.log(
        `  ${live} more events while it runs: applied ${model.counts.applied} in all, cursor ${following.cursor}, ` +
          `${following.lagRecords} records behind`
      )
      yield* showTable(model.table())
    })
  )

  yield* asProcess(
    data,
    "2. A process dies between the table write and the cursor commit",
    Effect.gen(function*() {
      const appended = yield* runCommands([["carol-1", deposit(300)], ["alice-2", deposit(20)], ["bob-1", withdraw(25)]])
      const written = yield* Deferred.make<void>()
      // The handler writes the table, then the process "dies": it hangs until the scope ends, so the
      // subscription never learns that the batch was applied and its cursor stays before it.
      const model = yield* balancesModel(file, Effect.andThen(Deferred.succeed(written, undefined), Effect.never))
      yield* subscribe(model)
      yield* Deferred.await(written)
      yield* Console.log(`  ${appended} events appended; the handler wrote them into the table, then the process died`)
    })
  )

  const beforeRebuild = yield* asProcess(
    data,
    "3. The next process resumes after its cursor",
    Effect.gen(function*() {
      const cursor = yield* (yield* CursorStore.CursorStore).get("balances")
      const stored = yield* loadTable(file)
      yield* Console.log(`  On disk: the table through seq ${stored.seq}, the cursor at seq ${Option.getOrThrow(cursor).seq}`)
      const appended = yield* runCommands([["carol-1", withdraw(50)], ["bob-1", deposit(10)]])
      yield* Console.log(`  ${appended} events appended before the subscription starts`)
      const model = yield* balancesModel(file)
      const status = yield* (yield* subscribe(model)).awaitCaughtUp
      yield* Console.log(
        `  Redelivered: ${model.counts.skipped} events the table already held, skipped; ` +
          `applied ${model.counts.applied} new events; cursor ${status.cursor}`
      )
      yield* showTable(model.table())
      return model.table()
    })
  )

  yield* asProcess(
    data,
    "4. Rebuilt from scratch",
    Effect.gen(function*() {
      yield* (yield* CursorStore.CursorStore).delete("balances")
      yield* removeFile(file)
      yield* Console.log("  Deleted the cursor and the table")
      const model = yield* balancesModel(file)
      const status = yield* (yield* subscribe(model)).awaitCaughtUp
      yield* Console.log(`  Replayed the whole log: applied ${model.counts.applied} events, cursor ${status.cursor}`)
      yield* showTable(model.table())
      const same = JSON.stringify(model.table()) === JSON.stringify(beforeRebuild)
      yield* Console.log(`  The same table as before the rebuild: ${same ? "yes" : "NO"}`)
      if (!same) return yield* Effect.die(new Error("the rebuilt table differs from the one the subscription kept"))
    })
  )
})

Effect.runPromise(Effect.scoped(main))
