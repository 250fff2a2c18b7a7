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
 * only. A failed write or fsync fails that append and every later write until the journal is
 * reopened (with `"always"` also the appends waiting for a flush, which are cut back): an fsync is never retried and assumed to have worked. Closing flushes what was written
 * and acknowledges the appends that flush covered; if it fails, they fail and are cut back. An
 * append whose fiber is interrupted after its write may still commit. Timestamps never go backwards
 * in seq order, even when the clock does.
 *
 * @since 0.1.0
 */
import { Effect, Layer, type Scope } from "effect"
import { observe } from "../internal/observedJournal.ts"
import { nodeFileIo } from "./internal/fileIo.ts"
import { open } from "./internal/fileJournal.ts"
import { Journal, type JournalError } from "../Journal.ts"

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
