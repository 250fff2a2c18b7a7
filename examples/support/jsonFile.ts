/**
 * A JSON document in a file, replaced atomically and durably: written to a temp file, fsynced,
 * renamed over the old one, and the directory fsynced — so after a crash the file holds the old
 * document or the new one, never a mix. What an example's read model needs to keep its table next to
 * its cursor.
 */
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"

const isMissing = (cause: unknown) => (cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT"

/** The parsed contents of `file`, or `undefined` when there is no such file. */
export const readJson = (file: string): Effect.Effect<unknown> =>
  Effect.promise(() =>
    fs.readFile(file, "utf8").then(
      (text) => JSON.parse(text) as unknown,
      (cause) => isMissing(cause) ? undefined : Promise.reject(cause)
    )
  )

/** Replaces `file` with `value` as JSON: temp file → fsync → rename → directory fsync. */
export const writeJsonAtomically = (file: string, value: unknown): Effect.Effect<void> =>
  Effect.promise(async () => {
    const temp = `${file}.tmp`
    const handle = await fs.open(temp, "w")
    try {
      await handle.writeFile(`${JSON.stringify(value, null, 2)}\n`)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await fs.rename(temp, file)
    const directory = await fs.open(path.dirname(file), "r")
    try {
      await directory.sync()
    } finally {
      await directory.close()
    }
  })

/** Removes `file`; a no-op when it is not there. */
export const removeFile = (file: string): Effect.Effect<void> => Effect.promise(() => fs.rm(file, { force: true }))
