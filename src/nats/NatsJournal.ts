/**
 * The Journal on a NATS JetStream stream: many processes on many machines append to and follow
 * one log.
 *
 * One JetStream stream per journal (`<prefix>_journal`), one subject per annals stream
 * (`<prefix>.journal.s.<namespace>.<id>`, names encoded to subject tokens: `internal/names.ts`).
 * Each append is one message carrying all its records (nats-server before 2.12 has no atomic batch
 * publish), so a multi-event append is stored whole or not at all. Every message carries the
 * journal's position after it (last seq, checkpoint, truncation), and is stored only if the stream's
 * last message is still the one its position was computed from (`internal/journalChain.ts`): seqs
 * are dense, handed out in the order messages are stored, and a record is settled the moment it is
 * stored. The version check is JetStream's expected last subject sequence; a retried publish with
 * the same message id (duplicate detection) is stored once.
 *
 * Record `seq` and `version` are the journal's own, in the message: stream sequences are the
 * messages' (one per append, marker or position message), never shown to users.
 *
 * `read(stream)` reads that subject alone; `replayFrom` finds the first message of a seq by a binary
 * search over stream sequences and reads on with an ordered consumer; `follow` reads pages the same
 * way and wakes on a headers-only ordered consumer of new messages. `truncateBefore` writes the new
 * truncation point, a marker for each annals stream whose last message it would remove (so its
 * version survives), then purges the messages before the cut.
 *
 * @since 0.1.0
 */
import { DeliverPolicy, type JsMsg } from "@nats-io/jetstream"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import type { AppendResult, JournalRecord, StreamRef } from "../Journal.ts"
import { Journal, JournalError, JournalTruncated, VersionConflict } from "../Journal.ts"
import { layerFromConfig, merged } from "../internal/config.ts"
import { FOLLOW_PAGE_RECORDS, follow as followLog, Settled } from "../internal/follow.ts"
import { InFlightPosition } from "../internal/inFlightPosition.ts"
import { appendedRecords, assignProblem, clockProblem, nextSeq } from "../internal/journalChecks.ts"
import { appendArgumentError, readArgumentError, replayMethods, seqArgumentError, versionArgumentError } from "../internal/journalArguments.ts"
import { observe } from "../internal/observedJournal.ts"
import { formatStream, integerProblem } from "../internal/validate.ts"
import { natsStoreOptions } from "./internal/config.ts"
import { describeNatsFailure } from "./internal/errors.ts"
import { type Decision, journalChain, type Known, storedNothing, withBlob } from "./internal/journalChain.ts"
import { type JournalMessage, LAST_SEQ_HEADER, type Position } from "./internal/journalMessages.ts"
import { journalPayloads } from "./internal/journalPayloads.ts"
import { journalReads } from "./internal/journalReads.ts"
import { journalRestore } from "./internal/journalRestore.ts"
import { ensureJournalStream } from "./internal/journalStream.ts"
import { type NatsStorageOptions, resolveStoreOptions } from "./internal/buckets.ts"
import { storeNames } from "./internal/names.ts"
import * as Client from "./NatsClient.ts"
import { NatsClient } from "./NatsClient.ts"

/**
 * Options of `make` / `layerClient`.
 *
 * @since 0.1.0
 * @category models
 */
export interface NatsJournalOptions extends NatsStorageOptions {
  /** Isolates this journal's stream, subjects and payload store; default `"annals"`. */
  readonly prefix?: string | undefined
  /** How long the server remembers message ids (default 120,000 ms): a retried append within it is stored once. */
  readonly duplicateWindowMs?: number | undefined
  /** How many times a message whose reply was lost is sent again with its id (default 3, 200 ms apart, doubling). */
  readonly retries?: number | undefined
}

/** Hints from a seq to the stream sequence where the page of a follower from it starts. */
const HINTS = 256

/**
 * How long each pull of the watcher lasts (the client's heartbeats come at half of it): after a
 * server restart the pull in progress is lost, and the watcher notices at its end (with the
 * client's default of 30 s, followers of other processes' appends stalled for about 40 s).
 */
const WATCH_PULL_MS = 2_000

/**
 * How often the journal reads the stream's tail besides its watcher: a wake-up the watcher misses
 * (its consumer lost with a restarted server and not yet replaced; seen once as a follower 40 s
 * late) delays followers by at most this.
 */
const PROBE_MS = 2_000

/**
 * Builds the Journal over the NatsClient in context, creating its stream if missing; the watcher
 * that wakes followers runs until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: NatsJournalOptions = {}): Effect.Effect<Journal, JournalError, NatsClient | Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = resolveStoreOptions(options)
    const duplicateWindowMs = options.duplicateWindowMs ?? 120_000
    const retries = options.retries ?? 3
    const badOption = typeof resolved === "string"
      ? resolved
      : integerProblem("duplicateWindowMs", duplicateWindowMs, 1_000) ?? integerProblem("retries", retries, 0)
    if (badOption !== undefined || typeof resolved === "string") return yield* new JournalError({ method: "open", message: `NatsJournal: ${badOption}` })
    const { prefix } = resolved
    const settings = { ...resolved.settings, duplicateWindowMs }
    const client = yield* NatsClient
    const names = storeNames(prefix)
    yield* ensureJournalStream(client.manager, names, settings, client.servers)
    const payloads = yield* journalPayloads(client, names, settings)
    const reads = journalReads(client, names, payloads.store)
    const chain = yield* journalChain(client, reads, retries)
    const settled = new Settled()
    const tracked = new InFlightPosition(settled)
    let closed = false

    const tail = (method: string) => Effect.tap(reads.tail(method), (t) => Effect.sync(() => tracked.advance(t.position.lastSeq)))
    yield* tail("open")

    // Other processes' appends: a headers-only ordered consumer of new messages (each says its last
    // seq). It delivers only what comes after its creation, so each (re)start then reads the tail:
    // appends made while no consumer watched wake followers too. Closing the messages (the journal
    // closes, or the loop failed) ends the loop; an ordered consumer's close is not awaited.
    const watch = Effect.gen(function*() {
      const messages = yield* Effect.acquireRelease(
        Effect.tryPromise(async () => {
          const consumer = await client.jetstream.consumers.get(names.journalStream, {
            filter_subjects: names.journalSubjects,
            deliver_policy: DeliverPolicy.New,
            headers_only: true
          })
          return consumer.consume({ max_messages: 256, expires: WATCH_PULL_MS })
        }),
        (messages) => Effect.sync(() => void messages.close().catch(() => undefined))
      )
      yield* Effect.ignore(tail("follow"))
      yield* Effect.tryPromise(async () => {
        for await (const msg of messages as AsyncIterable<JsMsg>) {
          const last = Number(msg.headers?.get(LAST_SEQ_HEADER))
          if (Number.isSafeInteger(last)) tracked.advance(last)
        }
      })
    }).pipe(Effect.scoped)
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.ignore(watch), Effect.sleep(250))))
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(PROBE_MS), Effect.ignore(tail("follow")))))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        settled.notify()
      })
    )
    const closedError = (method: string) => new JournalError({ method, message: `Journal.${method}: the NATS journal (stream ${names.journalStream}) is closed` })

    const append: Journal["append"] = (stream, expectedVersion, events) =>
      Effect.suspend(() => {
        const invalid = appendArgumentError(stream, expectedVersion, events)
        if (invalid !== undefined) return Effect.fail(invalid)
        if (closed) return Effect.fail(closedError("append"))
        const where = formatStream(stream)
        const ref: StreamRef = { namespace: stream.namespace, id: stream.id }
        return Effect.flatMap(Effect.andThen(settled.turn, Effect.clockWith((clock) => clock.currentTimeMillis)), (now) => {
          const badClock = clockProblem(now)
          if (badClock !== undefined) {
            return Effect.fail(new JournalError({ method: "append", message: `Cannot append to stream ${where}: ${badClock}; nothing was stored`, stream: ref }))
          }
          const decide = (position: Position, known: Known | undefined): Decision<AppendResult, JournalError | VersionConflict> => {
            const current = known!.version
            if (typeof expectedVersion === "number" && expectedVersion !== current) {
              // An expected version above one in flight may have been read after that message was stored: read again.
              return known!.fresh || (known!.inFlight && expectedVersion < current)
                ? { _tag: "Fail", error: new VersionConflict({ stream: ref, expected: expectedVersion, actual: current }) }
                : { _tag: "Stale" }
            }
            const firstSeq = nextSeq(position.lastSeq, position.checkpoint)
            const timestamp = Math.max(now, position.lastTimestamp)
            const bad = assignProblem(timestamp, firstSeq, events.length, current)
            if (bad !== undefined) return { _tag: "Fail", error: new JournalError({ method: "append", message: `Cannot append to stream ${where}: ${bad}; nothing was stored`, stream: ref }) }
            const records = appendedRecords(ref, events, firstSeq, current, timestamp)
            const lastSeq = firstSeq + events.length - 1
            return {
              _tag: "Send",
              message: { position: { ...position, lastSeq, lastTimestamp: timestamp }, stream: { ...ref, version: current + events.length }, records },
              done: (stored) => ({ firstSeq: stored.records[0]!.seq, lastSeq: stored.position.lastSeq, version: stored.stream!.version, timestamp: stored.records[0]!.timestamp })
            }
          }
          return Effect.flatMap(payloads.spill("append", events), (blob) => {
            tracked.started()
            let lastSeq: number | undefined
            const step = { method: "append", subject: names.streamSubject(ref.namespace, ref.id), streamSubject: true, msgId: randomUUID(), decide: withBlob(decide, blob) }
            return chain.write(step).pipe(
              Effect.tap((result) => Effect.sync(() => void (lastSeq = result.lastSeq))),
              Effect.tapError((error) => (blob !== undefined && storedNothing(error) ? payloads.remove("append", blob.name) : Effect.void)),
              Effect.onExit(() => Effect.sync(() => tracked.replied(lastSeq)))
            )
          })
        })
      })


    /** The records of the messages from the first that reaches `fromSeq` to the tail, at or above `fromSeq` and the truncation point. */
    const replay = (method: string, fromSeq: number): Stream.Stream<JournalRecord, JournalError> =>
      Stream.unwrap(Effect.gen(function*() {
        const at = yield* tail(method)
        const end = yield* reads.lastOn(method, names.streamSubjects)
        const start = fromSeq <= 1 ? 1 : yield* reads.findSeq(method, fromSeq, at.streamSeq)
        const floor = Math.max(fromSeq, at.position.truncatedBefore)
        return reads.between(method, start, end, names.streamSubjects).pipe(
          Stream.flatMap(({ message }) => Stream.fromIterable(message.records.filter((r) => r.seq >= floor)))
        )
      }))

    const { replayFrom, replayUntil } = replayMethods(replay)

    const read: Journal["read"] = (stream, options) => {
      const invalid = readArgumentError(stream, options)
      if (invalid !== undefined) return Stream.fail(invalid)
      if (options?.max === 0) return Stream.empty
      const from = options?.from ?? 1
      const to = options?.to ?? Number.MAX_SAFE_INTEGER
      const subject = names.streamSubject(stream.namespace, stream.id)
      return Stream.unwrap(Effect.gen(function*() {
        const [state, at] = yield* Effect.all([reads.subjectState("read", subject), reads.tail("read")], { concurrency: 2 })
        const records = reads.between("read", 1, state.streamSeq, subject).pipe(
          Stream.takeUntil(({ message }) => (message.stream?.version ?? 0) >= to),
          Stream.flatMap(({ message }) =>
            Stream.fromIterable(message.records.filter((r) => r.version >= from && r.version <= to && r.seq >= at.position.truncatedBefore)))
        )
        return options?.max === undefined ? records : Stream.take(records, options.max)
      }))
    }

    /** Where the page of a follower from a seq starts (learned from the page before). */
    const hints = new Map<number, number>()
    const hint = (seq: number, streamSeq: number) => {
      hints.set(seq, streamSeq)
      if (hints.size > HINTS) hints.delete(hints.keys().next().value!)
    }

    const page = (seq: number): Effect.Effect<ReadonlyArray<JournalRecord>, JournalError | JournalTruncated> =>
      Effect.gen(function*() {
        if (closed) return yield* closedError("follow")
        const from = Math.max(seq, 1)
        const truncated = (position: Position) =>
          from < position.removedBefore ? new JournalTruncated({ method: "follow", fromSeq: seq, truncatedBefore: position.truncatedBefore }) : undefined
        const at = yield* reads.tail("follow")
        const before = truncated(at.position)
        if (before !== undefined) return yield* before
        // Never past what this process knows settled: an append of ours may still wait for its reply.
        const limit = Math.min(tracked.settledSeq, at.position.lastSeq)
        if (limit < from) return []
        const start = hints.get(from) ?? (from <= 1 ? 1 : yield* reads.findSeq("follow", from, at.streamSeq))
        const records: Array<JournalRecord> = []
        let lastMessage: { readonly streamSeq: number; readonly message: JournalMessage } | undefined
        yield* Stream.runForEachWhile(reads.between("follow", start, at.streamSeq, names.journalSubjects), (delivered) =>
          Effect.sync(() => {
            lastMessage = delivered
            for (const r of delivered.message.records) if (r.seq >= from && r.seq <= limit && records.length < FOLLOW_PAGE_RECORDS) records.push(r)
            return records.length < FOLLOW_PAGE_RECORDS && delivered.message.position.lastSeq < limit
          }))
        // A truncation that removed records at the start of the page while it was read: fail, never skip.
        if (records.length === 0 || records[0]!.seq > from) {
          const after = truncated((yield* reads.tail("follow")).position)
          if (after !== undefined) return yield* after
        }
        const last = records[records.length - 1]
        if (last !== undefined && lastMessage !== undefined) {
          const rest = lastMessage.message.records.some((r) => r.seq > last.seq)
          hint(last.seq + 1, rest ? lastMessage.streamSeq : lastMessage.streamSeq + 1)
        }
        return records
      })

    const follow: Journal["follow"] = (fromSeq) => {
      const bad = seqArgumentError("follow", "fromSeq", fromSeq)
      if (bad !== undefined) return Stream.fail(bad)
      return followLog(fromSeq, { page, ready: (seq) => closed || tracked.settledSeq >= seq, settled })
    }

    /** Writes a position message that moves the checkpoint or truncation point, unless it would change nothing. */
    const movePosition = (method: string, change: (position: Position) => Position) =>
      chain.write<void, never>({
        method,
        subject: names.metaSubject,
        streamSubject: false,
        msgId: randomUUID(),
        decide: (position) => {
          const next = change(position)
          return next.checkpoint === position.checkpoint && next.truncatedBefore === position.truncatedBefore && next.removedBefore === position.removedBefore
            ? { _tag: "Done", result: undefined }
            : { _tag: "Send", message: { position: next, records: [] }, done: () => undefined }
        }
      })

    /** Writes a marker keeping the version of `subject` unless its last message is at or after `cut`. */
    const marker = (subject: string, stream: { readonly namespace: string; readonly id: string }, cut: number) =>
      chain.write<void, never>({
        method: "truncateBefore",
        subject,
        streamSubject: true,
        msgId: randomUUID(),
        decide: (position, known) =>
          known!.streamSeq >= cut || known!.streamSeq === 0
            ? { _tag: "Done", result: undefined }
            : { _tag: "Send", message: { position, stream: { ...stream, version: known!.version }, records: [] }, done: () => undefined }
      })

    const truncateBefore: Journal["truncateBefore"] = (seq) => {
      const bad = seqArgumentError("truncateBefore", "seq", seq)
      if (bad !== undefined) return Effect.fail(bad)
      return Effect.gen(function*() {
        yield* movePosition("truncateBefore", (p) => ({
          ...p,
          checkpoint: Math.max(p.checkpoint, seq),
          truncatedBefore: Math.max(p.truncatedBefore, seq),
          removedBefore: Math.max(p.removedBefore, Math.min(seq, p.lastSeq + 1))
        }))
        const at = yield* reads.tail("truncateBefore")
        // The stream's last message always stays: it holds the position (what every reader goes by).
        const cut = Math.min(yield* reads.findSeq("truncateBefore", seq, at.streamSeq), at.streamSeq)
        // Each annals stream whose last message is before the cut gets a marker after it first.
        const streams = new Map<string, { readonly namespace: string; readonly id: string }>()
        const blobs: Array<string> = []
        yield* Stream.runForEach(reads.between("truncateBefore", 1, cut - 1, names.journalSubjects, false), ({ message }) =>
          Effect.sync(() => {
            if (message.stream !== undefined) streams.set(names.streamSubject(message.stream.namespace, message.stream.id), message.stream)
            if (message.blob !== undefined) blobs.push(message.blob.name)
          }))
        for (const [subject, stream] of streams) yield* marker(subject, stream, cut)
        // Purge only when something lies before the cut (the server reads a purge up to sequence 1 as "everything").
        const first = yield* reads.next("truncateBefore", 1, names.journalSubjects)
        if (first === undefined || first.streamSeq >= cut) return
        yield* Effect.tryPromise({
          try: () => client.manager.streams.purge(names.journalStream, { seq: cut }),
          catch: (cause) =>
            new JournalError({ method: "truncateBefore", message: `Journal.truncateBefore: cannot purge the stream ${names.journalStream} before message ${cut}: ${describeNatsFailure(cause)}`, cause })
        })
        for (const name of blobs) yield* payloads.remove("truncateBefore", name)
      })
    }

    const setCheckpoint: Journal["setCheckpoint"] = (seq) => {
      const bad = seqArgumentError("setCheckpoint", "seq", seq)
      return bad !== undefined ? Effect.fail(bad) : movePosition("setCheckpoint", (p) => ({ ...p, checkpoint: Math.max(p.checkpoint, seq) }))
    }

    const version: Journal["version"] = (stream) => {
      const invalid = versionArgumentError(stream)
      if (invalid !== undefined) return Effect.fail(invalid)
      return Effect.map(reads.subjectState("version", names.streamSubject(stream.namespace, stream.id)), (state) => state.version)
    }

    const restore = journalRestore({ names, reads, chain, payloads, advance: (seq) => tracked.advance(seq) })

    return observe(Journal.of({
      append,
      read,
      replayFrom,
      replayUntil,
      follow,
      truncateBefore,
      checkpoint: Effect.map(tail("checkpoint"), (t) => t.position.checkpoint),
      setCheckpoint,
      lastSeq: Effect.map(tail("lastSeq"), (t) => t.position.lastSeq),
      version,
      restore
    }), "nats")
  })

/**
 * The Journal over the NatsClient in context (to share one connection with the other NATS layers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: NatsJournalOptions = {}): Layer.Layer<Journal, JournalError, NatsClient> => Layer.effect(Journal, make(options))

/**
 * The Journal over a connection of its own (`servers`, default `nats://127.0.0.1:4222`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Client.NatsClientOptions & NatsJournalOptions = {}): Layer.Layer<Journal, JournalError | Client.NatsClientError> =>
  layerClient(options).pipe(Layer.provide(Client.layer(options)))

/**
 * The options of `layer` from `Config`: the client's (`NATS_URL`, see `NatsClient.config`),
 * `ANNALS_NATS_PREFIX` (default `annals`), `ANNALS_NATS_REPLICAS` (1 to 5, default 1) and
 * `ANNALS_NATS_STORAGE` (`file`, the default, or `memory`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Client.NatsClientOptions & NatsJournalOptions> = merged(Client.config, natsStoreOptions)

/**
 * The Journal over a connection of its own, with the options from `config` (the environment by
 * default); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Client.NatsClientOptions & NatsJournalOptions>
): Layer.Layer<Journal, JournalError | Client.NatsClientError | Config.ConfigError> => layerFromConfig(config, layer, overrides)
