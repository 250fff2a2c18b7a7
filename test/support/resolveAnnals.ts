/**
 * Run as a child process by package-resolution.test.ts: prints whether `annals`, `annals/file`, `annals/testing` and
 * `annals/postgres` resolve to this repository's own `src` (the very modules a relative import loads) or elsewhere.
 */
import { Journal } from "annals"
import { FileJournal } from "annals/file"
import { PgSnapshotStore } from "annals/postgres"
import { AggregateSpec } from "annals/testing"
import * as file from "../../src/file/index.ts"
import * as core from "../../src/index.ts"
import * as postgres from "../../src/postgres/index.ts"
import * as testing from "../../src/testing/index.ts"

console.log(JSON.stringify({
  annals: Journal === core.Journal,
  "annals/file": FileJournal === file.FileJournal,
  "annals/testing": AggregateSpec === testing.AggregateSpec,
  "annals/postgres": PgSnapshotStore === postgres.PgSnapshotStore
}))
