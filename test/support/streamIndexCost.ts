/**
 * Child of the file Journal's memory test, in two roles, each in a process of its own so that
 * nothing else (a test runner, the garbage of building a journal) allocates during a measurement:
 *
 *   streamIndexCost build <directory> <count>    builds a journal of `count` one-record streams
 *   streamIndexCost measure <directory> <count>  prints `cost <bytes>`: what holding that journal
 *                                                open takes (heap and array buffers after a full
 *                                                collection, before and after the open)
 */
import { Effect } from "effect"
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

const [role, directory, count] = process.argv.slice(2)
if (role === "build") {
  await Effect.runPromise(oneRecordStreams(directory!, Number(count)))
  process.stdout.write("built\n")
} else {
  const cost = await Effect.runPromise(openCost(directory!, Number(count)))
  process.stdout.write(`cost ${cost}\n`)
}
