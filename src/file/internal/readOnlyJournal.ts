/**
 * The read-only file Journal's service: the reads of `journalReads.ts` over a `Tail` — the view of
 * a directory another process writes, brought up to date on every read — and write operations that
 * fail. `follow` looks for new records every `pollMs`. Takes no lock and writes nothing.
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import type { FileJournalReadOnlyOptions } from "../FileJournal.ts"
import { Journal, JournalError } from "../../Journal.ts"
import { integerProblem } from "../../internal/validate.ts"
import { CheckpointFile } from "./checkpointFile.ts"
import { message } from "./errors.ts"
import type { FileIo } from "./fileIo.ts"
import { isNotFound } from "./fs.ts"
import { readOperations } from "./journalReads.ts"
import { Reader } from "./reader.ts"
import { RecordIndex } from "./recordIndex.ts"
import { SegmentSet } from "./segments.ts"
import { FrameCodec } from "./segmentFormat.ts"
import { Tail } from "./tail.ts"

const DEFAULT_POLL_MS = 100

const optionsProblem = (options: FileJournalReadOnlyOptions): string | undefined =>
  typeof options?.directory !== "string" || options.directory.length === 0
    ? "directory must be a non-empty path"
    : options.pollMs === undefined
    ? undefined
    : integerProblem("pollMs", options.pollMs, 1)

/** Opens the journal in `options.directory` read-only on `io`; `follow` polls until the scope closes. @internal */
export const openReadOnly = (options: FileJournalReadOnlyOptions, io: FileIo): Effect.Effect<Journal, JournalError, Scope.Scope> =>
  Effect.gen(function*() {
    const problem = optionsProblem(options)
    if (problem !== undefined) {
      return yield* new JournalError({ method: "open", message: `Cannot open a file journal read-only: ${problem}` })
    }
    const directory = path.resolve(options.directory)
    // The read-only journal never creates, flushes or deletes a file: the durability is never used.
    const segments = new SegmentSet(directory, io, "os")
    const state = new CheckpointFile(directory, io)
    const index = new RecordIndex()
    const codec = new FrameCodec()
    const tail = new Tail(segments, state, index, codec)
    const fail = (cause: unknown) =>
      new JournalError({ method: "open", message: `Cannot open the journal in ${directory} read-only: ${message(cause)}`, cause })
    yield* Effect.try({
      try: () => io.readdirSync(directory),
      catch: (cause) => fail(isNotFound(cause) ? new Error("there is no such directory") : cause)
    })
    yield* Effect.try({ try: () => tail.catchUp(() => undefined), catch: fail })
    const reader = new Reader(segments, index, codec, () => tail.visibleSeq, (read) => tail.catchUp(read))
    // A wall-clock timer, not Effect's Clock: it polls the file system (as the writer's "interval" flush timer).
    // It keeps the process alive only while a follow runs: nothing else will wake that follower.
    const timer = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const timer = setInterval(() => tail.settled.notify(), options.pollMs ?? DEFAULT_POLL_MS)
        ;(timer as { unref?: () => void }).unref?.()
        return timer
      }),
      (timer) =>
        Effect.sync(() => {
          clearInterval(timer)
          tail.close()
        })
    )
    const refuse = (method: string) =>
      Effect.fail(new JournalError({ method, message: `The journal in ${directory} is open read-only: ${method} is refused` }))
    let following = 0
    const keepingAlive = <A, E>(stream: Stream.Stream<A, E>): Stream.Stream<A, E> =>
      Stream.unwrap(Effect.acquireRelease(
        Effect.sync(() => {
          if (following++ === 0) (timer as { ref?: () => void }).ref?.()
          return stream
        }),
        () => Effect.sync(() => void (--following === 0 && (timer as { unref?: () => void }).unref?.()))
      ))
    const reads = readOperations({
        reader,
        state,
        visibleSeq: () => tail.visibleSeq,
        removedBefore: () => tail.removedBefore,
        closed: (method) => (tail.closed ? new JournalError({ method, message: `The journal in ${directory} is closed` }) : undefined),
        settled: tail.settled,
        ready: (seq) => tail.ready(seq)
    })
    return Journal.of({
      ...reads,
      follow: (fromSeq) => keepingAlive(reads.follow(fromSeq)),
      append: () => refuse("append"),
      truncateBefore: () => refuse("truncateBefore"),
      setCheckpoint: () => refuse("setCheckpoint"),
      restore: () => refuse("restore")
    })
  })
