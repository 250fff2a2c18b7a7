/**
 * Child of the file Journal's memory test: builds journals of 80,000 and 190,000 one-record
 * streams in `<directory>`, measures what holding each open takes (heap and array buffers after a
 * full collection; the least of five opens) and prints `perStream <bytes>` — the difference per stream. A process of its own,
 * so that nothing else a test runner has loaded or left running allocates during the measurement.
 */
import { Effect } from "effect"
import * as path from "node:path"
import process from "node:process"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { nodeFileIo } from "../../src/file/internal/fileIo.ts"
import { open } from "../../src/file/internal/fileJournal.ts"

/** A full collection where the runtime allows one (Bun.gc; V8's gc, exposed at run time). */
const collectGarbage = () => {
  const bun = (globalThis as { Bun?: { gc: (force: boolean) => void } }).Bun
  if (bun !== undefined) return bun.gc(true)
  v8.setFlagsFromString("--expose-gc")
  ;(vm.runInNewContext("gc") as () => void)()
}
const heapAndBuffers = () => {
  collectGarbage()
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
}

const payload = new Uint8Array(16)

/** A journal of `count` one-record streams (ids shaped like UUIDs) in `directory`. */
const oneRecordStreams = (directory: string, count: number) =>
  Effect.scoped(Effect.gen(function*() {
    const journal = yield* open({ directory, durability: "os" }, nodeFileIo)
    for (let i = 0; i < count; i++) {
      yield* journal.append({ namespace: "account", id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}` }, 0, [{ type: "E", payload }])
    }
  }))

/** The memory that holding the journal in `directory` open takes. */
const openCost = (directory: string, count: number) =>
  Effect.scoped(Effect.gen(function*() {
    const before = heapAndBuffers()
    const journal = yield* open({ directory, durability: "os" }, nodeFileIo)
    const after = heapAndBuffers()
    if ((yield* journal.lastSeq) !== count) throw new Error(`the journal in ${directory} holds ${yield* journal.lastSeq} records, not ${count}`)
    return after - before
  }))

const root = process.argv[2]!
const small = path.join(root, "small")
const large = path.join(root, "large")
const perStream = await Effect.runPromise(Effect.gen(function*() {
  yield* oneRecordStreams(small, 80_000)
  yield* oneRecordStreams(large, 190_000)
  // The difference leaves out what every open keeps (buffers, the service); both sizes are just below
  // where the index's arrays grow, so that the difference is not mostly their spare room.
  // The least of a few opens each: garbage a collection left behind only ever adds to a measurement
  // (on Bun one open in a few measures ~250 bytes per stream more than the others).
  const least = (directory: string, count: number) =>
    Effect.map(Effect.forEach([1, 2, 3, 4, 5], () => openCost(directory, count)), (costs) => Math.min(...costs))
  return ((yield* least(large, 190_000)) - (yield* least(small, 80_000))) / 110_000
}))
process.stdout.write(`perStream ${perStream.toFixed(0)}\n`)
