/**
 * The writer child process of the read-only FileJournal test (test/file-read-only.test.ts): opens a
 * FileJournal (durability "os") on the directory given in argv — while the test holds a read-only
 * open of it — prints `ready`, then makes `appends` appends (expected version "any") to streams ro/s0…s2 (every fourth one of
 * three events, the others of one; a short pause every ten, so that the reader follows while it
 * writes), the segments rotating at `segmentBytes`. Ends with `done <lastSeq> <version of s0> <s1> <s2>`
 * and exits with code 0; any failure exits with code 3.
 *
 * Usage: fileWriterChild <directory> <appends> <segmentBytes>
 */
import { Effect } from "effect"
import process from "node:process"
import { FileJournal } from "../../src/file/index.ts"

const [directory, appendsText, segmentText] = process.argv.slice(2)
if (directory === undefined || appendsText === undefined || segmentText === undefined) {
  process.stderr.write("usage: fileWriterChild <directory> <appends> <segmentBytes>\n")
  process.exit(2)
}

const encoder = new TextEncoder()

const program = Effect.scoped(Effect.gen(function*() {
  const journal = yield* FileJournal.make({ directory, durability: "os", segmentBytes: Number(segmentText) })
  process.stdout.write("ready\n")
  const streams = [0, 1, 2].map((s) => ({ namespace: "ro", id: `s${s}` }))
  for (let i = 0; i < Number(appendsText); i++) {
    const events = Array.from({ length: i % 4 === 0 ? 3 : 1 }, (_, k) => ({ type: "Written", payload: encoder.encode(`${i}/${k}`) }))
    yield* journal.append(streams[i % 3]!, "any", events)
    if (i % 10 === 9) yield* Effect.sleep(2)
  }
  const versions = yield* Effect.forEach(streams, journal.version)
  process.stdout.write(`done ${yield* journal.lastSeq} ${versions.join(" ")}\n`)
}))

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`fileWriterChild failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
    process.exit(3)
  }
)
