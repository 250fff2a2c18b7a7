/**
 * The child process of the SIGKILL crash test: opens a FileJournal (durability "always") on the
 * directory given in argv and appends forever from a few concurrent fibers (single- and
 * multi-event appends to a few streams), printing `ack <firstSeq> <lastSeq> <namespace> <id> <version>`
 * on stdout only after each append returned. The parent kills it with SIGKILL at a random moment.
 *
 * Usage: appendChild <directory> <seed> <segmentBytes | "default">
 * Exits by itself (code 0) after 60 s in case the parent is gone; any failure exits with code 3.
 */
import { Effect } from "effect"
import process from "node:process"
import { FileJournal } from "../../src/file/index.ts"
import { crashEvent, crashStreams, formatAck } from "./crashWorkload.ts"
import { prng } from "./ledger.ts"

const FIBERS = 3

const [directory, seedText, segmentText] = process.argv.slice(2)
if (directory === undefined || seedText === undefined || segmentText === undefined) {
  process.stderr.write("usage: appendChild <directory> <seed> <segmentBytes|default>\n")
  process.exit(2)
}
const seed = Number(seedText)
const segmentBytes = segmentText === "default" ? undefined : Number(segmentText)

const program = Effect.scoped(Effect.gen(function*() {
  const journal = yield* FileJournal.make({
    directory,
    durability: "always",
    ...(segmentBytes !== undefined ? { segmentBytes } : {})
  })
  const deadline = Date.now() + 60_000
  yield* Effect.forEach(
    Array.from({ length: FIBERS }, (_, fiber) => fiber),
    (fiber) =>
      Effect.gen(function*() {
        const random = prng(seed * 31 + fiber)
        const mine = crashStreams.filter((_, i) => i % FIBERS === fiber)
        const versions = mine.map(() => 0)
        while (Date.now() < deadline) {
          const k = Math.floor(random() * mine.length)
          const stream = mine[k]!
          const count = random() < 0.4 ? 2 + Math.floor(random() * 4) : 1
          const events = Array.from({ length: count }, (_, i) => crashEvent(stream, versions[k]! + i + 1))
          const result = yield* journal.append(stream, versions[k]!, events)
          versions[k] = result.version
          process.stdout.write(formatAck({ firstSeq: result.firstSeq, lastSeq: result.lastSeq, ...stream, version: result.version }))
        }
      }),
    { concurrency: "unbounded", discard: true }
  )
}))

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`appendChild failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
    process.exit(3)
  }
)
