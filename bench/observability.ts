/**
 * The cost of annals' spans and metrics with no tracer installed: the same file journal appended to
 * through `FileJournal.make` (instrumented: a span and the append latency histogram per append) and
 * through the internal `open` it wraps (uninstrumented), in one process, in interleaved rounds on
 * two directories of the same options. The writer's own metrics (fsync time, group-commit size) are
 * in both: they are recorded once per flush, and "os" durability never flushes. Prints JSON lines:
 *
 *   <group>_instrumented_events_per_s, <group>_uninstrumented_events_per_s, and
 *   <group>_instrumentation_cost: 1 − the median over rounds of instrumented / uninstrumented rate;
 *   target ≤ 0.03
 *
 * Groups: `os` (page-cache appends: the most a per-append cost can weigh) and `durable` ("always":
 * one fdatasync per append).
 *
 *   bun bench/observability.ts [groups…]
 *   npm run bench -- observability [groups…]
 */
import { Effect, Exit, Scope } from "effect"
import { join } from "node:path"
import type { Journal } from "../src/Journal.ts"
import { nodeFileIo } from "../src/file/internal/fileIo.ts"
import { open } from "../src/file/internal/fileJournal.ts"
import type { FileJournalOptions } from "../src/file/FileJournal.ts"
import { makeTempDirs, openJournal, type OpenJournal, streamRef, timeAppends } from "./fixtures.ts"
import { median, report, runGroups } from "./report.ts"

const { make: tempDir, removeAll: removeTempDirs } = makeTempDirs()

/** The file journal without the instrumentation wrapper, in a scope of its own. */
const openPlain = async (options: FileJournalOptions): Promise<OpenJournal> => {
  const scope = await Effect.runPromise(Scope.make())
  const journal = await Effect.runPromise(Scope.provide(scope)(open(options, nodeFileIo)))
  return { journal, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

/** Interleaved rounds of `perRound` single-event appends to both journals (the order alternating by round). */
const compare = async (group: string, durability: FileJournalOptions["durability"], warmup: number, rounds: number, perRound: number) => {
  const dir = tempDir(group)
  const journals: Record<"instrumented" | "uninstrumented", OpenJournal> = {
    instrumented: await openJournal({ directory: join(dir, "instrumented"), durability }),
    uninstrumented: await openPlain({ directory: join(dir, "uninstrumented"), durability })
  }
  const stream = streamRef(group)
  const versions = { instrumented: 0, uninstrumented: 0 }
  const round = async (name: keyof typeof journals, count: number) => {
    const journal: Journal = journals[name].journal
    const seconds = await timeAppends(journal, stream, versions[name], count)
    versions[name] += count
    return count / seconds
  }
  await round("instrumented", warmup)
  await round("uninstrumented", warmup)
  const ratios: Array<number> = []
  const rates = { instrumented: [] as Array<number>, uninstrumented: [] as Array<number> }
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? (["instrumented", "uninstrumented"] as const) : (["uninstrumented", "instrumented"] as const)
    for (const name of order) rates[name].push(await round(name, perRound))
    ratios.push(rates.instrumented[r]! / rates.uninstrumented[r]!)
  }
  report({ bench: `${group}_instrumented_events_per_s`, value: median(rates.instrumented), unit: "events/s" })
  report({ bench: `${group}_uninstrumented_events_per_s`, value: median(rates.uninstrumented), unit: "events/s" })
  report({ bench: `${group}_instrumentation_cost`, value: 1 - median(ratios), unit: "ratio", target: { max: 0.03 } })
  await journals.instrumented.close()
  await journals.uninstrumented.close()
}

await runGroups({
  os: () => compare("os", "os", 20_000, 11, 40_000),
  durable: () => compare("durable", "always", 1_000, 11, 500)
}, removeTempDirs)
