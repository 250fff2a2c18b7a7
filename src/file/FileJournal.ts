/**
 * The Journal in a local directory, on `node:fs` (Bun, Deno and Node): the embedded default.
 *
 * Records go to append-only segment files named by the first seq they hold; each record is framed
 * with its length and a CRC-32, its fields encoded as msgpack. One append is one write, and recovery
 * keeps an append only when all of its records are intact. Segments rotate at `segmentBytes`;
 * `truncateBefore` deletes the segments wholly below the watermark. An index in memory, rebuilt by
 * a scan on open, takes `read(stream)` and `replayFrom(seq)` straight to their bytes.
 *
 * Durability — what an acknowledged append can lose:
 * - `"always"` (default): nothing. `append` returns after an fdatasync covered its records (and a
 *   directory fsync covered a new segment). Concurrent appends share one fdatasync (group commit),
 *   and reads, `lastSeq` and `version` only show records that are on the device (an append waiting
 *   for its flush counts for the expected-version check only). A flush covering one append of at most 64
 *   KiB runs on the calling thread while flushes are fast (under 1 ms), on the thread pool otherwise.
 * - `"interval"`: on power loss or an OS crash, the appends of the last `syncIntervalMs` (default
 *   100 ms) at most; nothing when only the process dies. Records are written to the OS before
 *   `append` returns.
 * - `"os"`: never fsyncs. Nothing when only the process dies; on power loss or an OS crash, whatever
 *   the OS had not written back — and the journal may then fail to open with an error naming the
 *   damage (it never drops acknowledged data silently).
 *
 * Recovery on open: an append torn by a crash at the tail of the last segment is cut off and
 * logged; a bad record followed by intact ones, or anywhere in an earlier (sealed) segment, fails the
 * open with a `JournalError` naming the file and byte offset, and nothing is changed. Unless
 * durability is `"os"`, the scanned segments and the directory are flushed before reads may return
 * their records (what a killed process wrote may still be in the page cache only).
 *
 * One writer per directory: a `LOCK` file names the owning process and thread; a second open
 * (another process, another layer or worker thread in this one, another path to the directory)
 * fails while the owner lives, and a lock left by a dead process is taken over, by one process
 * only. Readers — the CLI, a second process — open the directory with `makeReadOnly` beside the
 * writer: no lock, and nothing written. A failed write or fsync fails that append and every later write until the journal is
 * reopened (with `"always"` also the appends waiting for a flush, which are cut back): an fsync is never retried and assumed to have worked. Closing flushes what was written
 * and acknowledges the appends that flush covered; if it fails, they fail and are cut back. An
 * append whose fiber is interrupted after its write may still commit. Timestamps never go backwards
 * in seq order, even when the clock does.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { dataDirectory } from "./internal/config.ts"
import { observe } from "../internal/observedJournal.ts"
import { nodeFileIo } from "./internal/fileIo.ts"
import { MIN_SEGMENT_BYTES, open } from "./internal/fileJournal.ts"
import { openReadOnly } from "./internal/readOnlyJournal.ts"
import { verifyDirectory } from "./internal/verifier.ts"
import { integerAtLeast, layerFromConfig, optional } from "../internal/config.ts"
import { Journal, JournalError } from "../Journal.ts"

/**
 * Options of the file Journal.
 *
 * @since 0.1.0
 * @category models
 */
export interface FileJournalOptions {
  /** The journal's directory; created if missing. */
  readonly directory: string
  /** When an append counts as stored: `"always"` (default), `"interval"` or `"os"` (see the module doc). */
  readonly durability?: "always" | "interval" | "os" | undefined
  /** How often `"interval"` durability flushes, in milliseconds (default 100). */
  readonly syncIntervalMs?: number | undefined
  /** The size at which the active segment is sealed and a new one started (default 64 MiB). */
  readonly segmentBytes?: number | undefined
}

/**
 * Opens the journal in `options.directory`, recovering it after a crash, and holds its lock until
 * the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: FileJournalOptions): Effect.Effect<Journal, JournalError, Scope.Scope> =>
  Effect.map(open(options, nodeFileIo), (journal) => observe(journal, "file"))

/**
 * The file Journal as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: FileJournalOptions): Layer.Layer<Journal, JournalError> => Layer.effect(Journal, make(options))

/**
 * The options from `Config`: `ANNALS_JOURNAL_DIR` (default `journal` below `ANNALS_DATA_DIR`, whose
 * default is `data`), `ANNALS_JOURNAL_DURABILITY` (`always`, `interval` or `os`),
 * `ANNALS_JOURNAL_SYNC_INTERVAL_MS` (≥ 1) and `ANNALS_JOURNAL_SEGMENT_BYTES` (≥ 256); an option whose
 * variable is absent keeps its default.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<FileJournalOptions> = Config.all({
  directory: dataDirectory("ANNALS_JOURNAL_DIR", "journal"),
  durability: optional(Config.Literals(["always", "interval", "os"], "ANNALS_JOURNAL_DURABILITY")),
  syncIntervalMs: integerAtLeast("ANNALS_JOURNAL_SYNC_INTERVAL_MS", 1),
  segmentBytes: integerAtLeast("ANNALS_JOURNAL_SEGMENT_BYTES", MIN_SEGMENT_BYTES)
})

/**
 * The file Journal with its options from `config` (the environment by default); `overrides`
 * replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (overrides?: Partial<FileJournalOptions>): Layer.Layer<Journal, JournalError | Config.ConfigError> =>
  layerFromConfig(config, layer, overrides)

/**
 * What `verify` found in a journal directory: each problem (and each note, such as an append still
 * being written at the end) with its file and byte offset.
 *
 * @since 0.1.0
 * @category verify
 */
export interface VerifyReport {
  readonly segments: number
  readonly records: number
  readonly problems: ReadonlyArray<{ readonly file: string; readonly offset?: number | undefined; readonly problem: string }>
  readonly notes: ReadonlyArray<{ readonly file: string; readonly offset?: number | undefined; readonly problem: string }>
}

/**
 * Checks every segment file of the journal in `directory` — headers, every record's checksum and
 * fields, seqs in order within and across segments — without opening it: no lock is taken and
 * nothing is written, so its writer may keep running. Past a damaged record it looks for the next
 * intact one, so that the report names every damaged place. Fails only when the directory cannot be
 * read.
 *
 * @since 0.1.0
 * @category verify
 */
export const verify = (directory: string): Effect.Effect<VerifyReport, JournalError> =>
  Effect.try({
    try: () => verifyDirectory(directory, nodeFileIo),
    catch: (cause) => new JournalError({ method: "verify", message: `Cannot verify the journal in ${directory}: ${String(cause)}`, cause })
  })

/**
 * Options of a read-only open of a file Journal.
 *
 * @since 0.1.0
 * @category models
 */
export interface FileJournalReadOnlyOptions {
  /** The journal's directory; it must exist (it is never created). */
  readonly directory: string
  /** How often `follow` looks for records the writer added, in milliseconds (default 100). */
  readonly pollMs?: number | undefined
}

/**
 * Opens the journal in `options.directory` read-only, beside its writer (another process, or
 * none): takes no lock and never writes — no recovery, no cleanup, no directory creation. Reads
 * take in what the writer has written since the last one (only the new bytes and segments); an
 * append is seen once all of its records are in the file, a partial one at the tail is not written
 * yet (with durability `"always"` an append may be seen shortly before its flush returns to the
 * writer). Damage in the middle of a segment or in a sealed one fails reads with a `JournalError`
 * naming file and offset. `append`, `truncateBefore`, `setCheckpoint` and `restore` fail with a
 * `JournalError`; `follow` polls every `pollMs` and ends when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeReadOnly = (options: FileJournalReadOnlyOptions): Effect.Effect<Journal, JournalError, Scope.Scope> =>
  Effect.map(openReadOnly(options, nodeFileIo), (journal) => observe(journal, "file"))

/**
 * The read-only file Journal as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerReadOnly = (options: FileJournalReadOnlyOptions): Layer.Layer<Journal, JournalError> =>
  Layer.effect(Journal, makeReadOnly(options))
