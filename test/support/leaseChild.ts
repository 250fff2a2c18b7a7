/**
 * The child process of the cross-process lease test (`leaseCompetition.ts`): competes with its
 * siblings for the lease of the cursor `orders` in a PostgreSQL, Redis or NATS CursorStore, `rounds` times. Each round it acquires the lease
 * (retrying while another owner holds it), appends `enter <owner> <token>` to the shared log,
 * renews the lease (the token must stay), moves the cursor one seq on under the lease, appends
 * `exit <owner> <token>` and releases. Prints `done` at the end.
 *
 * Usage: leaseChild postgres|redis|nats <url> <schema, key prefix or store prefix> <owner> <log file> <rounds>
 * Exits with code 0 after `done`, 3 on any failure (written to stderr).
 */
import { Effect, type Layer, Option, Schedule } from "effect"
import * as fs from "node:fs"
import process from "node:process"
import { CursorStore } from "../../src/index.ts"
import * as NatsCursorStore from "../../src/nats/NatsCursorStore.ts"
import { PgCursorStore } from "../../src/postgres/index.ts"
import { RedisCursorStore } from "../../src/redis/index.ts"

const [backend, url, space, owner, log, roundsText] = process.argv.slice(2)
if (
  (backend !== "postgres" && backend !== "redis" && backend !== "nats") || url === undefined || space === undefined || owner === undefined || log === undefined ||
  roundsText === undefined
) {
  process.stderr.write("usage: leaseChild postgres|redis|nats <url> <schema, key prefix or store prefix> <owner> <log file> <rounds>\n")
  process.exit(2)
}

const layers: Record<typeof backend, () => Layer.Layer<CursorStore.CursorStore, unknown>> = {
  postgres: () => PgCursorStore.layer({ url, schema: space, max: 2 }),
  redis: () => RedisCursorStore.layer({ url, prefix: space }),
  nats: () => NatsCursorStore.layer({ servers: url, prefix: space })
}
const layer = layers[backend]()

const note = (line: string) => Effect.sync(() => fs.appendFileSync(log, `${line}\n`))

const program = Effect.gen(function*() {
  const store = yield* CursorStore.CursorStore
  for (let round = 0; round < Number(roundsText); round++) {
    const lease = yield* store.acquire("orders", owner, 30_000).pipe(
      Effect.retry({ while: (error) => error._tag === "LeaseHeld", schedule: Schedule.spaced("2 millis") })
    )
    yield* note(`enter ${owner} ${lease.token}`)
    yield* Effect.sleep("5 millis")
    const renewed = yield* store.acquire("orders", owner, 30_000)
    if (renewed.token !== lease.token) return yield* Effect.die(new Error(`a renewal changed the token from ${lease.token} to ${renewed.token}`))
    const seq = Option.match(yield* store.get("orders"), { onNone: () => 0, onSome: (cursor) => cursor.seq })
    yield* store.commit("orders", seq + 1, renewed)
    yield* note(`exit ${owner} ${lease.token}`)
    yield* store.release("orders", owner)
  }
  yield* Effect.sync(() => process.stdout.write("done\n"))
})

Effect.runPromise(Effect.scoped(Effect.provide(program, layer))).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`leaseChild ${owner} failed: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(3)
  }
)
