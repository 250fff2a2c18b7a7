/**
 * A Journal whose writes go to a writable file journal and whose reads come from a read-only one
 * opened beside it on the same directory (as the CLI or a second process reads it): appends,
 * truncation, `setCheckpoint` and `restore` go to the writer; `read`, `replayFrom`, `replayUntil`,
 * `follow`, `version`, `lastSeq` and `checkpoint` to the reader. Suites run over it check that a
 * reader beside a writer agrees with the writer.
 */
import { Effect, type Scope } from "effect"
import { FileJournal } from "../../src/file/index.ts"
import type { Journal, JournalError } from "../../src/Journal.ts"

/** The writer over `options.directory` and a reader beside it polling every `pollMs` (default the reader's). */
export const readOnlyBesideWriter = (
  options: FileJournal.FileJournalOptions,
  pollMs?: number
): Effect.Effect<Journal, JournalError, Scope.Scope> =>
  Effect.gen(function*() {
    const writer = yield* FileJournal.make(options)
    const reader = yield* FileJournal.makeReadOnly({ directory: options.directory, ...(pollMs !== undefined ? { pollMs } : {}) })
    return {
      ...writer,
      read: reader.read,
      replayFrom: reader.replayFrom,
      replayUntil: reader.replayUntil,
      follow: reader.follow,
      version: reader.version,
      lastSeq: reader.lastSeq,
      checkpoint: reader.checkpoint
    } satisfies Journal
  })
