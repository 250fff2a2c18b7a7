/** A fresh temporary directory for the current scope, removed with everything in it when the scope closes. */
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"

export const tempDirectory = (prefix: string) =>
  Effect.acquireRelease(
    Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), `annals-${prefix}-`))),
    (directory) => Effect.promise(() => fs.rm(directory, { recursive: true, force: true }))
  )
