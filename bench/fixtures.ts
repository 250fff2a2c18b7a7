/**
 * What the benchmarks share: the events they append, writers that append them to any journal,
 * temporary directories, a file journal open in a scope the caller closes, and the large mixed
 * journal (many bulk streams and one hot stream spread over the whole log) that the replay, open,
 * read and catch-up figures run over.
 */
import { Effect, Exit, Result, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import type * as Aggregate from "../src/Aggregate.ts"
import type { EventData, Journal, JournalError, StreamRef, VersionConflict } from "../src/Journal.ts"
import { FileJournal } from "../src/file/index.ts"

// ─── Events ───────────────────────────────────────────────────────────────────────────────────────
/** The size of every benchmark event's payload. */
export const PAYLOAD_BYTES = 100
/** 1,024 distinct pseudo-random 100-byte payloads (a fixed seed, so every run stores the same bytes). */
const payloads: ReadonlyArray<Uint8Array> = (() => {
  let x = 0x9e3779b9
  return Array.from({ length: 1024 }, () => {
    const bytes = new Uint8Array(PAYLOAD_BYTES)
    for (let i = 0; i < bytes.length; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      bytes[i] = x & 0xff
    }
    return bytes
  })
})()
/** The `i`-th benchmark event: two types, one of 1,024 payloads. */
export const eventAt = (i: number): EventData => ({ type: i % 3 === 2 ? "Debited" : "Credited", payload: payloads[i & 1023]! })
/** The namespace of every benchmark stream. */
export const NAMESPACE = "account"
/** A stream of the benchmarks' `account` namespace. */
export const streamRef = (id: string): StreamRef => ({ namespace: NAMESPACE, id })

// ─── Writers ──────────────────────────────────────────────────────────────────────────────────────
/** A writer on one stream: each call makes `count` appends of `size` events, each expecting the stream's version. */
export type JournalWriter = (count: number, size: number) => Effect.Effect<void, JournalError | VersionConflict>

/** A writer on stream `id` of `journal`, starting at version 0 (the version carries over from call to call). */
export const journalWriter = (journal: Journal, id: string): JournalWriter => {
  const stream = streamRef(id)
  let version = 0
  return (count, size) =>
    Effect.gen(function*() {
      for (let i = 0; i < count; i++) {
        const events = Array.from({ length: size }, (_, k) => eventAt(version + k))
        yield* journal.append(stream, version, events)
        version += size
      }
    })
}

/** `count` single-event appends to `stream`, one after another, inside one fiber. */
export const appendSequential = (journal: Journal, stream: StreamRef, from: number, count: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) yield* journal.append(stream, from + i, [eventAt(from + i)])
  })

/** Seconds for `count` sequential appends, timed inside the fiber. */
export const timeAppends = (journal: Journal, stream: StreamRef, from: number, count: number) =>
  Effect.runPromise(Effect.gen(function*() {
    const start = performance.now()
    yield* appendSequential(journal, stream, from, count)
    return (performance.now() - start) / 1000
  }))

/** Each of `writers` making `count` appends of `size` events, all at once (one fiber each). */
export const writeConcurrently = (
  writers: ReadonlyArray<JournalWriter>,
  count: number,
  size: number
): Effect.Effect<void, JournalError | VersionConflict> =>
  Effect.forEach(writers, (write) => write(count, size), { concurrency: "unbounded", discard: true })

// ─── Temporary directories ────────────────────────────────────────────────────────────────────────
/** Temporary directories made by one benchmark process, removed together at its end. */
export interface TempDirs {
  /** A new directory under ANNALS_BENCH_DIR (default `os.tmpdir()`), its name tagged with `label`. */
  readonly make: (label: string) => string
  /** Removes every directory made so far. */
  readonly removeAll: () => void
}

/** A fresh set of temporary directories. */
export const makeTempDirs = (): TempDirs => {
  const made: Array<string> = []
  return {
    make: (label) => {
      const dir = fs.mkdtempSync(join(process.env["ANNALS_BENCH_DIR"] ?? os.tmpdir(), `annals-bench-${label}-`))
      made.push(dir)
      return dir
    },
    removeAll: () => {
      for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

// ─── Journals ─────────────────────────────────────────────────────────────────────────────────────
/** A journal open in a scope the caller closes (so raw rounds can run between its rounds). */
export interface OpenJournal {
  readonly journal: Journal
  readonly close: () => Promise<void>
}

/** Opens a file journal in a scope of its own. */
export const openJournal = async (options: FileJournal.FileJournalOptions): Promise<OpenJournal> => {
  const scope = await Effect.runPromise(Scope.make())
  const journal = await Effect.runPromise(Scope.provide(scope)(FileJournal.make(options)))
  return { journal, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

/** The shape of a large mixed journal. */
export interface LargeJournalShape<E extends { readonly _tag: string } = never> {
  /** Records in all. */
  readonly records: number
  /** Single-event appends to the hot stream among them; `records − hotEvents` must be a multiple of `BULK`. */
  readonly hotEvents: number
  /**
   * Schema-encoded events instead of `eventAt`'s opaque payloads: the `i`-th record is `at(i)`
   * encoded with the aggregate's event codec (its namespace must be `account`), so that a projection
   * over the aggregate decodes every record. Without it, the records are `eventAt(i)`.
   */
  readonly events?: { readonly aggregate: Aggregate.Aggregate<E, any>; readonly at: (i: number) => E } | undefined
}

/** Events per bulk append of a large journal. */
export const BULK = 100
const OTHER_STREAMS = 999
/** The stream of a large journal whose events are spread one or two per `BULK` records over the whole log. */
export const hotStream: StreamRef = streamRef("hot")

/**
 * Builds a large journal in `directory`: appends of `BULK` events round-robin over 999 streams, and
 * after each about `hotEvents / bulk appends` single-event appends to the hot stream, so the hot
 * stream's events are spread over the whole log. "os" durability; closed at the end. Returns the
 * build's seconds.
 */
export const buildLargeJournal = <E extends { readonly _tag: string } = never>(
  directory: string,
  shape: LargeJournalShape<E>
): Promise<number> => {
  const { records, hotEvents, events } = shape
  const bulkAppends = (records - hotEvents) / BULK
  if (!Number.isInteger(bulkAppends) || bulkAppends < 1 || hotEvents < 0) {
    throw new Error(`buildLargeJournal: ${records} records with ${hotEvents} hot events leave no whole number of ${BULK}-event appends`)
  }
  if (events !== undefined && events.aggregate.namespace !== NAMESPACE) {
    throw new Error(`buildLargeJournal: the aggregate's namespace is ${JSON.stringify(events.aggregate.namespace)}, not ${JSON.stringify(NAMESPACE)}`)
  }
  const recordAt = events === undefined ? eventAt : (i: number): EventData => {
    const event = events.at(i)
    const payload = events.aggregate.eventCodec.encode(event)
    if (Result.isFailure(payload)) throw new Error(`buildLargeJournal: event ${i} (${event._tag}) does not encode: ${String(payload.failure)}`)
    return { type: event._tag, payload: payload.success }
  }
  return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const journal = yield* FileJournal.make({ directory, durability: "os" })
    const versions = new Array<number>(OTHER_STREAMS).fill(0)
    const others = Array.from({ length: OTHER_STREAMS }, (_, i) => streamRef(`acct-${i}`))
    let hotVersion = 0
    let n = 0
    const start = performance.now()
    for (let b = 0; b < bulkAppends; b++) {
      const s = b % OTHER_STREAMS
      yield* journal.append(others[s]!, versions[s]!, Array.from({ length: BULK }, () => recordAt(n++)))
      versions[s]! += BULK
      const hotDue = Math.floor(((b + 1) * hotEvents) / bulkAppends) - Math.floor((b * hotEvents) / bulkAppends)
      for (let h = 0; h < hotDue; h++) {
        yield* journal.append(hotStream, hotVersion, [recordAt(n++)])
        hotVersion++
      }
    }
    const seconds = (performance.now() - start) / 1000
    const lastSeq = yield* journal.lastSeq
    if (lastSeq !== records || hotVersion !== hotEvents) throw new Error(`build: lastSeq ${lastSeq}, hot version ${hotVersion}`)
    return seconds
  })))
}
