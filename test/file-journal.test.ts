/**
 * The file Journal: the whole Journal conformance suite over a fresh directory per case (durable:
 * every build reopens the same directory), with default segments and with segments so small that
 * nearly every append rotates, so that rotation and whole-segment truncation run in every case.
 */
import { Effect } from "effect"
import { FileJournal } from "../src/file/index.ts"
import { register } from "./conformance/harness.ts"
import { type JournalStorage, journalCases } from "./conformance/Journal.ts"
import { tempDirectory as makeTempDirectory } from "./support/tempDirectory.ts"

const tempDirectory = makeTempDirectory("journal")

const fixture = (name: string, options: Omit<FileJournal.FileJournalOptions, "directory">) =>
  register("Journal", {
    name,
    durable: true,
    storage: Effect.map(tempDirectory, (directory): JournalStorage => ({ layer: FileJournal.layer({ ...options, directory }) }))
  }, journalCases)

fixture("file (always)", {})
fixture("file (always, 256-byte segments)", { segmentBytes: 256 })
fixture("file (interval, 512-byte segments)", { durability: "interval", syncIntervalMs: 5, segmentBytes: 512 })
fixture("file (os)", { durability: "os" })
