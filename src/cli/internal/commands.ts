/**
 * The `annals` command and its subcommands, on `effect/cli`. Every command opens the stores named
 * by `--store` (default `ANNALS_STORE`, else `./data`) and, where it needs one, the archive named by
 * `--archive` (default `ANNALS_ARCHIVE`, else the file store's `archive/`). Commands that only read
 * open a file store read-only: no lock, nothing written, its writer may keep running.
 * @internal
 */
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as fs from "node:fs"
import process from "node:process"
import type { Archive } from "../../Archive.ts"
import { Archive as ArchiveService } from "../../Archive.ts"
import { Journal, type JournalRecord } from "../../Journal.ts"
import { redactUrl } from "../../internal/redact.ts"
import * as Stores from "../../Stores.ts"
import { checkSource, importFile } from "./importFile.ts"
import * as Inspect from "./inspect.ts"
import { file, type Output, showTime, stdout, table } from "./output.ts"
import * as Progress from "./progress.ts"
import * as Transfer from "./transfer.ts"
import { type ArchiveCheck, type Problem, report, verifyArchive, verifyJournal, verifySegments } from "./verify.ts"

/** A command ended unsuccessfully: what to print (may be empty) and the process' exit status. @internal */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{ readonly message: string; readonly exitCode: number }> {}

/** Exit statuses. @internal */
export const ExitCode = { problems: 1, usage: 2, store: 3, failed: 4 } as const

const usage = (message: string) => new CommandFailed({ message, exitCode: ExitCode.usage })

const shared = {
  store: Flag.String("store").pipe(
    Flag.withAlias("s"),
    Flag.withDescription(
      "The store: a directory (./data), memory:, postgres://…, redis://… or nats://… (default: $ANNALS_STORE, else $ANNALS_DATA_DIR, else ./data)"
    ),
    Flag.withFallbackConfig(Config.String("ANNALS_STORE").pipe(Config.orElse(() => Config.String("ANNALS_DATA_DIR")))),
    Flag.withDefault("data")
  ),
  archive: Flag.String("archive").pipe(
    Flag.withDescription("The archive: s3://bucket/prefix, a directory or memory: (default: $ANNALS_ARCHIVE, else <store>/archive)"),
    Flag.withFallbackConfig(Config.String("ANNALS_ARCHIVE")),
    Flag.optional
  ),
  json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("Print JSON (one object a line) instead of text")),
  quiet: Flag.Boolean("quiet").pipe(Flag.withDefault(false), Flag.withAlias("q"), Flag.withDescription("No progress display"))
}

const annals = Command.make("annals").pipe(
  Command.withDescription("Inspect, verify, export, import and restore annals stores."),
  Command.withSharedFlags(shared)
)

/** Runs `effect` over the stores of `--store` (read-only unless `write`), mapping failures to exit statuses. */
const withStores = <A, E, R>(
  store: string,
  readOnly: boolean,
  effect: Effect.Effect<A, E, R>
) =>
  effect.pipe(
    Effect.provide(Stores.layerUrl(store, { readOnly })),
    Effect.mapError((error) =>
      error instanceof Stores.StoresError ? new CommandFailed({ message: error.message, exitCode: ExitCode.store }) : error
    )
  )

/** The archive of `--archive`, else the store's own (a file store's `archive/`, if it has one). */
const archiveUrl = (store: string, archive: Option.Option<string>): string | undefined => {
  if (Option.isSome(archive)) return archive.value
  const own = Stores.defaultArchiveUrl(store)
  return own !== undefined && (Stores.backendOf(own) !== "file" || fs.existsSync(own)) ? own : undefined
}

const archiveLayer = (store: string, archive: Option.Option<string>): Layer.Layer<Archive, Stores.StoresError | CommandFailed> => {
  const url = archiveUrl(store, archive)
  return url === undefined
    ? Layer.effect(
      ArchiveService,
      Effect.fail(new CommandFailed({ message: `The store ${redactUrl(store)} has no archive: name one with --archive (or ANNALS_ARCHIVE)`, exitCode: ExitCode.store }))
    )
    : Stores.layerArchiveUrl(url, { readOnly: true })
}

const failed = (error: { readonly message: string }) => new CommandFailed({ message: error.message, exitCode: ExitCode.failed })

/** Any failure that is not already a `CommandFailed` becomes one with status `failed`. */
const finish = <A, E extends { readonly message: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.mapError(effect, (error): CommandFailed => error instanceof CommandFailed ? error : failed(error))

const print = (text: string) => stdout.write(text)
const counted = (n: number, noun: string) => `${n.toLocaleString("en-US")} ${noun}${n === 1 ? "" : "s"}`
const printJson = (value: unknown) => print(JSON.stringify(value) + "\n")

const progressFor = (quiet: boolean, label: string, unit: string) => Progress.make(label, unit, undefined, Progress.modeOf(quiet))

const streams = Command.make("streams", {
  namespace: Flag.String("namespace").pipe(Flag.withAlias("n"), Flag.withDescription("Only this namespace"), Flag.optional)
}, ({ namespace }) =>
  Effect.gen(function*() {
    const { json, quiet, store } = yield* annals
    const progress = yield* progressFor(quiet, "streams", "records")
    const found = yield* withStores(store, true, Inspect.streams(progress, Option.getOrUndefined(namespace)))
    if (json) return yield* Effect.forEach(found, printJson, { discard: true })
    yield* print(table(
      ["namespace", "id", "version", "records", "first seq", "last seq", "last append"],
      found.map((s) => [s.namespace, s.id, s.version, s.records, s.firstSeq, s.lastSeq, showTime(s.lastTimestamp)])
    ))
  }).pipe(finish)).pipe(Command.withDescription("List the streams: namespaces, ids, versions and record counts"))

const optionalBound = (flag: string, value: Option.Option<string>) =>
  Option.match(value, {
    onNone: () => Effect.succeed(undefined),
    onSome: (text) => {
      const bound = Transfer.parseBound(flag, text)
      return typeof bound === "string" ? Effect.fail(usage(bound)) : Effect.succeed(bound)
    }
  })

/** Fails with a usage error unless `value` (when given) is at least 1. */
const atLeastOne = (flag: string, value: Option.Option<number>) =>
  Option.isSome(value) && value.value < 1 ? Effect.fail(usage(`${flag} ${value.value}: must be 1 or more`)) : Effect.void

const versionOptions = (from: Option.Option<number>, to: Option.Option<number>) => ({
  ...(Option.isSome(from) ? { from: from.value } : {}),
  ...(Option.isSome(to) ? { to: to.value } : {})
})

const read = Command.make("read", {
  namespace: Argument.String("namespace"),
  id: Argument.String("id"),
  from: Flag.Int("from").pipe(Flag.withDescription("First version"), Flag.optional),
  to: Flag.Int("to").pipe(Flag.withDescription("Last version"), Flag.optional)
}, ({ from, id, namespace, to }) =>
  Effect.gen(function*() {
    const { store } = yield* annals
    yield* atLeastOne("--from", from)
    yield* atLeastOne("--to", to)
    yield* withStores(
      store,
      true,
      Effect.flatMap(Journal, (journal) => Transfer.lines(journal.read({ namespace, id }, versionOptions(from, to)), Transfer.readableLine, stdout))
    )
  }).pipe(finish)).pipe(Command.withDescription("Print one stream's records as JSON lines, payloads decoded"))

const boundFlags = {
  from: Flag.String("from").pipe(Flag.withDescription("From this seq (an integer) or time (ISO 8601)"), Flag.optional),
  until: Flag.String("until").pipe(Flag.withDescription("Up to this seq or time, inclusive"), Flag.optional),
  output: Flag.String("output").pipe(Flag.withAlias("o"), Flag.withDescription("Write to this file instead of standard output"), Flag.optional)
}

/** `dump` and `export`: the records between the bounds, as lines of `format`. */
const writeCommand = (name: "dump" | "export", format: (record: JournalRecord) => string) =>
  Command.make(name, boundFlags, ({ from, output, until }) =>
    Effect.gen(function*() {
      const { quiet, store } = yield* annals
      const bounds = [yield* optionalBound("--from", from), yield* optionalBound("--until", until)] as const
      const progress = yield* progressFor(quiet, name, "records")
      // The output file is made once the store is open, and replaces the one there only when all went well.
      yield* withStores(
        store,
        true,
        Effect.scoped(Effect.gen(function*() {
          const checkpoint = yield* (yield* Journal).checkpoint
          if (checkpoint > 1 && bounds[0] === undefined && !quiet) {
            process.stderr.write(
              `${name}: note: the journal was truncated before seq ${checkpoint}; its records start there ` +
                "(the older ones are in the archive: annals restore)\n"
            )
          }
          const target: Output = Option.isSome(output) ? yield* file(output.value) : stdout
          yield* Transfer.write(format, target, progress, ...bounds)
        }))
      )
    }).pipe(finish))

const dump = writeCommand("dump", Transfer.readableLine).pipe(
  Command.withDescription("Print the journal as JSON lines, one record a line, payloads decoded from msgpack (for jq)")
)

const exportCommand = writeCommand("export", Transfer.exportLine).pipe(
  Command.withDescription("Write the journal as exact JSON lines (payload bytes in base64) for `annals import` into any backend")
)

const importCommand = Command.make("import", {
  file: Argument.String("file").pipe(Argument.withDescription("An export file, or - for standard input"))
}, ({ file: path }) =>
  Effect.gen(function*() {
    const { json, quiet, store } = yield* annals
    // Before the store is opened (a writable open creates a missing store's directories).
    yield* checkSource(path)
    const progress = yield* progressFor(quiet, "import", "records")
    const imported = yield* withStores(store, false, importFile(path, progress))
    yield* json ? printJson({ imported }) : print(`imported ${imported.toLocaleString("en-US")} records into ${redactUrl(store)}\n`)
  }).pipe(finish)).pipe(Command.withDescription("Import an export file into an empty journal, keeping seqs, versions and timestamps"))

const tail = Command.make("tail", {
  from: Flag.Int("from").pipe(Flag.withDescription("From this seq (default: only records appended from now on)"), Flag.optional)
}, ({ from }) =>
  Effect.gen(function*() {
    const { store } = yield* annals
    yield* atLeastOne("--from", from)
    yield* withStores(
      store,
      true,
      Effect.gen(function*() {
        const journal = yield* Journal
        const fromSeq = Option.isSome(from) ? from.value : (yield* journal.lastSeq) + 1
        yield* Transfer.lines(journal.follow(fromSeq), Transfer.readableLine, stdout)
      })
    )
  }).pipe(finish)).pipe(Command.withDescription("Follow the journal: print each record as it is appended (Ctrl-C stops)"))

const verifyCommand = Command.make("verify", {
  noArchive: Flag.Boolean("no-archive").pipe(Flag.withDefault(false), Flag.withDescription("Do not check the archive"))
}, ({ noArchive }) =>
  Effect.gen(function*() {
    const { archive, json, quiet, store } = yield* annals
    const file = Stores.backendOf(store) === "file"
    if (file && !fs.existsSync(Stores.directoryOf(store))) {
      return yield* new CommandFailed({ message: `There is no store at ${store}`, exitCode: ExitCode.store })
    }
    const progress = yield* progressFor(quiet, "verify", "records")
    const journal = yield* verifyJournal(progress).pipe(
      Effect.provide(Stores.layerUrl(store, { readOnly: true })),
      Effect.catch((error): Effect.Effect<Problem> => Effect.succeed({ where: "store", problem: error.message }))
    )
    // A server that cannot be reached has not been verified: that is not a report of problems.
    if (!file && "problem" in journal) return yield* new CommandFailed({ message: journal.problem, exitCode: ExitCode.store })
    const url = archiveUrl(store, archive)
    const archived = noArchive || url === undefined ? undefined : yield* verifyArchive(
      yield* progressFor(quiet, "verify archive", "segments")
    ).pipe(
      Effect.provide(Stores.layerArchiveUrl(url, { readOnly: true })),
      Effect.catch((error): Effect.Effect<ArchiveCheck> =>
        Effect.succeed({ segments: 0, archivedThrough: 0, problems: [{ where: "archive", problem: error.message }] }))
    )
    const segments = yield* verifySegments(store)
    const result = report(journal, archived, segments)
    if (json) yield* printJson(result)
    else {
      yield* print(
        `${counted(result.records, "record")} in ${counted(result.streams, "stream")}, ` +
          `${counted(result.snapshots, "snapshot")}, ${counted(result.segments, "archive segment")} checked\n` +
          result.problems.map((p) => `✗ ${p.where}: ${p.problem}\n`).join("") +
          result.notes.map((n) => `note: ${n}\n`).join("") +
          (result.ok ? "ok: no problems found\n" : `${result.problems.length} problem${result.problems.length === 1 ? "" : "s"} found\n`)
      )
    }
    if (!result.ok) return yield* new CommandFailed({ message: "", exitCode: ExitCode.problems })
  }).pipe(finish)).pipe(Command.withDescription("Check every record, stream version, snapshot and archive segment; exit status 1 if anything is wrong"))

const stats = Command.make("stats", {}, () =>
  Effect.gen(function*() {
    const { json, quiet, store } = yield* annals
    const progress = yield* progressFor(quiet, "stats", "records")
    const s = yield* withStores(store, true, Inspect.stats(progress))
    if (json) return yield* printJson(s)
    yield* print(
      `last seq ${s.lastSeq.toLocaleString("en-US")}, checkpoint ${s.checkpoint.toLocaleString("en-US")}\n` +
        `${s.records.toLocaleString("en-US")} records (${s.payloadBytes.toLocaleString("en-US")} payload bytes) in ${s.streams.toLocaleString("en-US")} streams, ` +
        `from ${showTime(s.firstTimestamp)} to ${showTime(s.lastTimestamp)}\n` +
        table(["namespace", "streams", "records"], Object.entries(s.namespaces).map(([ns, n]) => [ns, n.streams, n.records]))
    )
  }).pipe(finish)).pipe(Command.withDescription("Count records, streams and namespaces"))

const subscriptions = Command.make("subscriptions", {}, () =>
  Effect.gen(function*() {
    const { json, store } = yield* annals
    const found = yield* withStores(store, true, Inspect.subscriptions)
    if (json) return yield* Effect.forEach(found, printJson, { discard: true })
    yield* print(table(["name", "cursor", "lag (records)", "updated"], found.map((c) => [c.name, c.seq, c.lag, showTime(c.updatedAt)])))
  }).pipe(finish)).pipe(Command.withDescription("List the subscriptions' cursors and how far each is behind the journal"))

const archiveStatus = Command.make("status", {}, () =>
  Effect.gen(function*() {
    const { archive, json, store } = yield* annals
    const s = yield* withStores(store, true, Effect.provide(Inspect.archiveStatus, archiveLayer(store, archive)))
    if (json) return yield* printJson(s)
    yield* print(
      `${s.segments} segments, seqs ${s.firstSeq ?? "-"}..${s.archivedThrough}` +
        (s.bytes !== null ? `, ${s.bytes.toLocaleString("en-US")} bytes` : "") + "\n" +
        `journal: last seq ${s.journalLastSeq.toLocaleString("en-US")}, checkpoint ${s.journalCheckpoint.toLocaleString("en-US")}\n` +
        `lag: ${s.lag.toLocaleString("en-US")} seqs not archived yet\n`
    )
  }).pipe(finish)).pipe(Command.withDescription("How far the archive has got behind the journal"))

const archiveCommand = Command.make("archive").pipe(
  Command.withDescription("The archive"),
  Command.withSubcommands([archiveStatus])
)

const restore = Command.make("restore", {
  to: Flag.String("to").pipe(Flag.withDescription("The fresh store to restore into (a directory, postgres://…, …)")),
  until: Flag.String("until").pipe(Flag.withDescription("Restore records up to this time (ISO 8601), inclusive"), Flag.optional),
  archiveOnly: Flag.Boolean("archive-only").pipe(Flag.withDefault(false), Flag.withDescription("Only the archive, not the --store journal's later records"))
}, ({ archiveOnly, to, until }) =>
  Effect.gen(function*() {
    const { archive, json, quiet, store } = yield* annals
    const bound = yield* optionalBound("--until", until)
    if (bound !== undefined && "seq" in bound) return yield* usage("--until takes a time (ISO 8601), not a seq")
    const progress = yield* progressFor(quiet, "restore", "records")
    const result = yield* Effect.gen(function*() {
      const sourceArchive = yield* ArchiveService
      const run = (journal: Journal | undefined) => withStores(to, false, Transfer.restore(sourceArchive, journal, bound?.time, progress))
      return archiveOnly ? yield* run(undefined) : yield* withStores(store, true, Effect.flatMap(Journal, run))
    }).pipe(Effect.provide(archiveLayer(store, archive)))
    yield* json
      ? printJson(result)
      : print(
        `restored ${(result.fromArchive + result.fromJournal).toLocaleString("en-US")} records into ${redactUrl(to)}: ` +
          `${result.fromArchive.toLocaleString("en-US")} from ${result.segments} archive segments, ${result.fromJournal.toLocaleString("en-US")} from the journal\n`
      )
  }).pipe(Effect.scoped, finish)).pipe(Command.withDescription("Restore the archive (and the journal's later records) up to a time into a fresh store"))

/** The `annals` command with every subcommand. @internal */
export const command = annals.pipe(
  Command.withSubcommands([streams, read, dump, tail, verifyCommand, stats, subscriptions, archiveCommand, restore, exportCommand, importCommand])
)
