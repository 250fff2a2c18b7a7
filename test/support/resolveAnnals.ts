/**
 * Run as a child process by package-resolution.test.ts: prints whether `annals` and `annals/file`
 * resolve to this repository's own `src` (the very modules a relative import loads) or elsewhere.
 */
import { Journal } from "annals"
import { FileJournal } from "annals/file"
import * as file from "../../src/file/index.ts"
import * as core from "../../src/index.ts"

console.log(JSON.stringify({ annals: Journal === core.Journal, "annals/file": FileJournal === file.FileJournal }))
