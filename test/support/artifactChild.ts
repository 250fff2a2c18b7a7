/**
 * The child process of the projection artifact crash test: exports `crashArtifact(round)` for round
 * after round (starting after the newest complete one under the root) until it is killed, printing
 * `exported <round>` after each write returned.
 *
 * Usage: artifactChild <root>
 * Prints `ready <first round>` before its first write. Exits by itself (code 0) after 60 s in case the
 * parent is gone; any failure exits with code 3.
 */
import process from "node:process"
import { CRASH_PROJECTION, CRASH_VERSION, crashArtifact } from "./artifactWorkload.ts"
import { listArtifacts, writeArtifact } from "./directoryArtifacts.ts"

const [root] = process.argv.slice(2)
if (root === undefined) {
  process.stderr.write("usage: artifactChild <root>\n")
  process.exit(2)
}

const main = async () => {
  const existing = await listArtifacts(root, CRASH_PROJECTION, CRASH_VERSION)
  let round = (existing[existing.length - 1]?.manifest.round ?? -1) + 1
  process.stdout.write(`ready ${round}\n`)
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    await writeArtifact(root, crashArtifact(round, `child-${process.pid}`))
    process.stdout.write(`exported ${round}\n`)
    round++
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(3)
  }
)
