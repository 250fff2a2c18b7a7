/**
 * A shopping cart, event-sourced with annals: typed commands with domain errors, a phone and a
 * laptop adding to the same cart at the same moment (the losing writer's command is re-run on the
 * fresh state and decides differently), automatic snapshots, the raw audit trail in the journal,
 * "what did the cart look like before checkout?" with `load(id, { asOf })`, and a checkpoint
 * without an archive, after which old history is gone — and `load` says so instead of guessing.
 *
 * Runs unchanged on all three runtimes, on the real clock; its data goes to a fresh temporary
 * directory, removed at the end (`--keep` keeps it):
 *
 *   npx bun examples/shopping-cart.ts
 *   npx deno run -A examples/shopping-cart.ts
 *   npx tsc -p tsconfig.node.json && node --conditions=annals-repo .build/node/examples/shopping-cart.js
 */
import { Checkpointer, Codec, Journal, Repository, SnapshotStore } from "annals"
import { FileJournal, FileSnapshotStore } from "annals/file"
import { Clock, Console, Deferred, Effect, Layer, Option, Result, Stream } from "effect"
import { join } from "node:path"
import { addItem, beans, Cart, type CartState, checkout, filters, mug, removeItem, total } from "./domain/shoppingCart.ts"
import { dataDirectory } from "./support/dataDirectory.ts"

// ─── 1. The domain ──────────────────────────────────────────────────────────────────────────────
// Events, state, the aggregate, products, commands and domain errors live in ./domain/shoppingCart.ts
// (tested with annals/testing in test/examples.test.ts); this file adds the storage and the story.
const euros = (cents: number) => `€${(cents / 100).toFixed(2)}`
const show = (cart: CartState) => {
  const lines = Object.values(cart.lines).map((line) => `${line.quantity} × ${line.name}`)
  return `[${lines.join(", ") || "empty"}] ${euros(total(cart))}${cart.checkedOut ? ", checked out" : ""}`
}
/** Journal timestamps have millisecond resolution: waiting a little separates one session from the next. */
const nextSession = (title: string) => Effect.andThen(Effect.sleep("5 millis"), Console.log(`\n── ${title} ──`))

// ─── 2. The program ─────────────────────────────────────────────────────────────────────────────
const program = Effect.gen(function*() {
  const carts = yield* Repository.make(Cart)
  const snapshots = yield* SnapshotStore.SnapshotStore

  yield* nextSession("Alice browses on her laptop")
  yield* carts.execute("alice", addItem(beans, 2))
  const added = yield* carts.execute("alice", addItem(filters, 1))
  yield* Console.log(`cart: ${show(added.state)} (version ${added.version})`)

  // Two devices, two Repository instances, one journal: both read the cart with no mugs.
  yield* nextSession("Alice adds the limited mug on her phone while the laptop tab does the same")
  const phone = yield* Repository.make(Cart)
  const laptop = yield* Repository.make(Cart)
  const laptopDone = yield* Deferred.make<void>()
  let phoneAttempts = 0
  const phoneAdds = phone.execute("alice", (cart) =>
    Effect.gen(function*() {
      phoneAttempts++
      const mugs = cart.lines[mug.sku]?.quantity ?? 0
      yield* Console.log(`phone, attempt ${phoneAttempts}: the cart holds ${mugs} mug(s); asking for 2`)
      if (phoneAttempts === 1) yield* Deferred.await(laptopDone) // the phone is on a slow network
      return yield* addItem(mug, 2)(cart)
    }))
  const laptopAdds = laptop.execute("alice", addItem(mug, 1)).pipe(
    Effect.tap((done) => Console.log(`laptop: added ${done.events.length === 1 ? "1 mug" : "nothing"} (version ${done.version})`)),
    Effect.andThen(Deferred.succeed(laptopDone, undefined))
  )
  const [phoneDone] = yield* Effect.all([phoneAdds, laptopAdds], { concurrency: "unbounded" })
  const phoneEvent = phoneDone.events[0]
  yield* Console.log(
    `phone: added ${phoneEvent?._tag === "ItemAdded" ? phoneEvent.quantity : 0} mug(s) (version ${phoneDone.version}). ` +
      `Its first append hit a VersionConflict; the retry re-ran the command on the cart the laptop had changed.`
  )
  yield* Console.log(`cart: ${show(phoneDone.state)}`)
  const third = yield* Effect.flip(carts.execute("alice", addItem(mug, 1)))
  yield* Console.log(`a third mug? ${third._tag}: ${third.message}`)
  const latest = yield* snapshots.get("cart", "alice")
  yield* Console.log(`automatic snapshots (every 3 events): the latest is at version ${Option.match(latest, { onNone: () => "-", onSome: (s) => s.version })}`)
  const beforeCheckout = yield* Clock.currentTimeMillis

  yield* nextSession("Alice changes her mind about the filters, then checks out")
  yield* carts.execute("alice", removeItem(filters.sku))
  const paid = yield* carts.execute("alice", checkout)
  yield* Console.log(`cart: ${show(paid.state)} (version ${paid.version})`)
  const again = yield* carts.execute("alice", addItem(beans, 1)).pipe(
    Effect.catchTag("CartClosed", (error) => Effect.succeed(`refused: ${error.message}`))
  )
  yield* Console.log(`adding beans after checkout: ${typeof again === "string" ? again : "accepted?!"}`)

  yield* nextSession("Bob fills a cart, empties it and tries to check out")
  yield* carts.execute("bob", addItem(filters, 3))
  yield* carts.execute("bob", removeItem(filters.sku))
  const bobCheckout = yield* Effect.flip(carts.execute("bob", checkout))
  yield* Console.log(`Bob's checkout: ${bobCheckout._tag} (${bobCheckout.message})`)

  // The journal is the audit trail: every record, in order, with its timestamp.
  yield* nextSession("Alice's cart, as stored in the journal")
  const journal = yield* Journal.Journal
  const records = yield* Stream.runCollect(journal.read({ namespace: "cart", id: "alice" }))
  const start = records[0]!.timestamp
  for (const record of records) {
    const event = Codec.decodeRecord(Cart.eventCodec, record)
    yield* Console.log(
      `v${record.version}  seq ${record.seq}  +${String(record.timestamp - start).padStart(3)} ms  ` +
        `${record.type.padEnd(11)} ${Result.isSuccess(event) ? JSON.stringify(event.success) : "undecodable!"}`
    )
  }

  // Time travel: exactly the events with timestamp ≤ asOf, folded from the start.
  const past = yield* carts.load("alice", { asOf: beforeCheckout })
  yield* Console.log(`\nJust before checkout, the cart was: ${show(past.state)} (version ${past.version})`)

  // Compaction without an Archive: snapshot every touched stream, then drop the records.
  yield* nextSession("Checkpoint (no archive configured)")
  const result = yield* (yield* Checkpointer.make([Cart], { history: "discard" })).run
  yield* Console.log(
    `checkpoint moved from seq ${result.from} to ${result.checkpoint}; ${result.streams} cart(s) touched, ${result.snapshots} snapshot(s) written; ` +
      `archived: ${Option.match(result.archivedThrough, { onNone: () => "no (history: \"discard\")", onSome: (seq) => `through seq ${seq}` })}`
  )
  const current = yield* (yield* Repository.make(Cart)).load("alice")
  yield* Console.log(`a fresh Repository still loads Alice's cart from its snapshot: ${show(current.state)}`)
  const gone = yield* Effect.flip(carts.load("alice", { asOf: beforeCheckout }))
  yield* Console.log(`but the past is gone: ${gone._tag}: ${gone.message}`)
  yield* Console.log("(configure an Archive and an Archiver to keep it: see examples/bank-account.ts)")
})

// ─── 3. Wiring: the file journal and snapshot store, in a fresh temporary directory per run ───────
const main = Effect.gen(function*() {
  const data = yield* dataDirectory("cart")
  const storage = Layer.mergeAll(
    FileJournal.layer({ directory: join(data, "journal") }),
    FileSnapshotStore.layer({ directory: join(data, "snapshots") })
  )
  yield* program.pipe(Effect.provide(storage))
})

Effect.runPromise(Effect.scoped(main))
