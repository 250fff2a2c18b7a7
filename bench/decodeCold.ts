/**
 * One cold process of bench/decode.ts's `cold` group: imports annals, does one thing for the first
 * time and again, and prints one JSON line {importMs, firstMs, secondMs, sinceStartMs}: the import of
 * annals (and Effect), the first and the second run of the thing, and the time from the process's
 * start (its `performance` time origin) to the end of the first run.
 *
 *   decodeCold load-memory <events>      fills a memory Journal with <events> cart events, then loads the stream
 *   decodeCold load-file <dir> <stream>  opens the file journal <dir> and loads the cart stream <stream>
 *   decodeCold execute-memory            the first `execute` (one ItemAdded) on a memory Journal
 *   decodeCold execute-file <dir>        the first `execute` on a new stream of the file journal <dir>
 *   decodeCold raw <dir>                 unpacks <dir>/payloads.bin with msgpackr and folds them plainly
 *                                        (no annals, no Effect: the import is msgpackr's)
 */
import * as fs from "node:fs"
import { join } from "node:path"

const [mode, ...args] = process.argv.slice(2)
const print = (importMs: number, firstMs: number, secondMs: number, sinceStartMs: number) =>
  console.log(JSON.stringify({ importMs, firstMs, secondMs, sinceStartMs }))

/** Milliseconds `run` takes, and when it ended (since the process's start). */
const timed = async (run: () => Promise<unknown> | unknown) => {
  const start = performance.now()
  await run()
  const end = performance.now()
  return { ms: end - start, end }
}

if (mode === "raw") {
  const imported = await timed(() => import("msgpackr"))
  const { unpack } = await import("msgpackr")
  const directory = args[0]!
  const count = Number(fs.readFileSync(join(directory, "count"), "utf8"))
  const bytes = new Uint8Array(fs.readFileSync(join(directory, "payloads.bin")))
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const payloads: Array<Uint8Array> = []
  for (let i = 0, at = 4 * count; i < count; i++) {
    const size = view.getUint32(4 * i)
    payloads.push(bytes.slice(at, at + size))
    at += size
  }
  // bench/cart.ts's reducer, written out: importing that module would import annals into this process.
  const pass = () => {
    let state = { total: 0, items: 0 }
    for (let i = 0; i < payloads.length; i++) {
      const event = unpack(payloads[i]!) as { readonly qty: number; readonly price: number }
      state = { total: state.total + event.qty * event.price, items: state.items + event.qty }
    }
    if (state.items === 0) throw new Error("nothing folded")
  }
  const first = await timed(pass)
  const second = await timed(pass)
  print(imported.ms, first.ms, second.ms, first.end)
} else {
  const importStart = performance.now()
  const { Effect, Layer, ManagedRuntime } = await import("effect")
  const { Codec, Journal, Repository, SnapshotStore } = await import("../src/index.ts")
  const { FileJournal } = await import("../src/file/index.ts")
  const importMs = performance.now() - importStart
  const { cart, itemAt } = await import("./cart.ts")
  const aggregate = cart()
  const file = mode === "load-file" || mode === "execute-file"
  const runtime = ManagedRuntime.make(Layer.mergeAll(
    file ? FileJournal.layer({ directory: args[0]! }) : Journal.layerMemory,
    SnapshotStore.layerMemory()
  ))
  if (mode === "load-memory") {
    const events = Number(args[0])
    await runtime.runPromise(Effect.gen(function*() {
      const journal = yield* Journal.Journal
      const stream = { namespace: aggregate.namespace, id: "big" }
      for (let from = 0; from < events; from += 1_000) {
        const batch = Array.from({ length: Math.min(1_000, events - from) }, (_, i) => itemAt(from + i))
        yield* journal.append(stream, from, yield* Codec.encodeEvents(aggregate.eventCodec, stream, batch))
      }
    }))
  }
  const repo = await runtime.runPromise(Repository.make(aggregate, { cacheSize: 0 }))
  if (mode === "load-memory" || mode === "load-file") {
    const id = mode === "load-memory" ? "big" : args[1]!
    const first = await timed(() => runtime.runPromise(repo.load(id)))
    const second = await timed(() => runtime.runPromise(repo.load(id)))
    print(importMs, first.ms, second.ms, first.end)
  } else if (mode === "execute-memory" || mode === "execute-file") {
    const id = `new-${process.pid}-${Date.now()}`
    const add = () => Effect.succeed([itemAt(1)])
    const first = await timed(() => runtime.runPromise(repo.execute(id, add)))
    const second = await timed(() => runtime.runPromise(repo.execute(id, add)))
    print(importMs, first.ms, second.ms, first.end)
  } else {
    throw new Error(`decodeCold: unknown mode ${JSON.stringify(mode)}`)
  }
  await runtime.dispose()
}
