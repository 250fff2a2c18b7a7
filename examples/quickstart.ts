/**
 * The annals quick start: a typed event schema, a journal, optimistic concurrency, a fold into
 * state, and an archived segment. Runs unchanged on all three runtimes:
 *
 *   npx bun examples/quickstart.ts
 *   npx deno run -A examples/quickstart.ts
 *   npx tsc -p tsconfig.node.json && node --conditions=annals-repo .build/node/examples/quickstart.js
 *
 * Its data goes to a fresh temporary directory, removed at the end (`--keep` keeps it).
 */
import { Archive, Codec, Journal } from "annals"
import { DirectoryArchive, FileJournal } from "annals/file"
import { Effect, Layer, Result, Schema, Stream } from "effect"
import { join } from "node:path"
import { dataDirectory } from "./support/dataDirectory.ts"

// 1. The domain: events are a union of tagged structs.
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Finite })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Finite })
const AccountEvent = Schema.Union([Deposited, Withdrawn])
type AccountEvent = typeof AccountEvent.Type

const codec = Codec.make(AccountEvent)
const balance = (events: ReadonlyArray<AccountEvent>) =>
  events.reduce((sum, e) => (e._tag === "Deposited" ? sum + e.amount : sum - e.amount), 0)

const program = Effect.gen(function*() {
  const journal = yield* Journal.Journal
  const account = { namespace: "account", id: "alice" }

  // 2. Append with an expected version: 0 means "the stream must not exist yet".
  const opening = yield* Codec.encodeEvents(codec, account, [{ _tag: "Deposited", amount: 100 }])
  yield* journal.append(account, 0, opening)

  // 3. A writer holding a stale version is refused, and nothing is stored.
  const stale = yield* Codec.encodeEvents(codec, account, [{ _tag: "Withdrawn", amount: 500 }])
  const conflict = yield* Effect.flip(journal.append(account, 0, stale))
  yield* Effect.log(conflict.message)

  const more = yield* Codec.encodeEvents(codec, account, [{ _tag: "Withdrawn", amount: 30 }, { _tag: "Deposited", amount: 5 }])
  const appended = yield* journal.append(account, 1, more)
  yield* Effect.log(`appended seqs ${appended.firstSeq}..${appended.lastSeq}, stream at version ${appended.version}`)

  // 4. Read the stream back, decode each record with the schema, fold into state.
  const records = yield* Stream.runCollect(journal.read(account))
  const events = records.map((record) => Result.getOrThrow(Codec.decodeRecord(codec, record)))
  yield* Effect.log(`alice's balance: ${balance(events)}`)

  // 5. Ship the records to the archive, then truncate the journal: the history stays readable.
  const archive = yield* Archive.Archive
  const ref = yield* archive.put({ startSeq: 1, endSeq: appended.lastSeq, records })
  yield* journal.truncateBefore(appended.lastSeq + 1)
  const fromArchive = yield* archive.get(ref)
  yield* Effect.log(`journal now holds ${(yield* Stream.runCollect(journal.replayFrom(0))).length} records; ` +
    `archive ${ref.key} holds ${fromArchive.length}; alice is still at version ${yield* journal.version(account)}`)
})

// 6. Wiring: the embedded file layers (the default), in a fresh temporary directory so that every run
//    starts from nothing; give `directory` a path of your own to keep the data.
const main = Effect.gen(function*() {
  const data = yield* dataDirectory("quickstart")
  const storage = Layer.mergeAll(
    FileJournal.layer({ directory: join(data, "journal") }),
    DirectoryArchive.layer({ directory: join(data, "archive") })
  )
  yield* Effect.provide(program, storage)
})

Effect.runPromise(Effect.scoped(main))
