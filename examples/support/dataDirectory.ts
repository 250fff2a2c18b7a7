/**
 * Where an example keeps its data: a fresh temporary directory for the scope, so that every run
 * starts from nothing. It is named when it is made and removed with everything in it when the scope
 * closes — unless the example was started with `--keep` (`npm start -- --keep`), which leaves it there.
 */
import { Console, Effect } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"

/** A fresh directory named `annals-<name>-…` under the system's temporary directory. */
export const dataDirectory = (name: string) => {
  const keep = process.argv.slice(2).includes("--keep")
  return Effect.acquireRelease(
    Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), `annals-${name}-`))).pipe(
      Effect.tap((directory) =>
        Console.log(`Data: ${directory} (${keep ? "kept at the end" : "removed at the end; --keep keeps it"})`)
      )
    ),
    (directory) =>
      keep
        ? Console.log(`\nThe data stays in ${directory}`)
        : Effect.promise(() => fs.rm(directory, { recursive: true, force: true })).pipe(
          Effect.andThen(Console.log(`\nRemoved ${directory}`))
        )
  )
}
