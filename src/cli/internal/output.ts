/**
 * Where a command writes its data: standard output or a file, waiting for the reader to keep up
 * (a dump piped into `jq` or `head` must not buffer the whole journal), and tables for people.
 * @internal
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import process from "node:process"

/** A writable destination. @internal */
export interface Output {
  /** Writes `text` as it is, once the destination has taken what came before. */
  readonly write: (text: string) => Effect.Effect<void, OutputError>
}

/** Writing failed (a full disk, a closed pipe). @internal */
export class OutputError extends Data.TaggedError("OutputError")<{ readonly message: string }> {}

const writeTo = (stream: NodeJS.WritableStream, where: string) => (text: string) =>
  Effect.callback<void, OutputError>((resume) => {
    // The callback runs once the text is handed on: one write in flight at a time.
    stream.write(text, (error) =>
      resume(error ? Effect.fail(new OutputError({ message: `Cannot write to ${where}: ${error.message}` })) : Effect.void))
  })

/** Standard output. @internal */
export const stdout: Output = { write: writeTo(process.stdout, "standard output") }

/**
 * The file at `path`, written whole or not at all: the text goes to a temporary file beside it,
 * which replaces `path` when the scope closes successfully and is removed when it fails — so a
 * failed export never leaves a partial file, nor empties the one that was there. @internal
 */
export const file = (path: string): Effect.Effect<Output, OutputError, Scope.Scope> => {
  const temporary = `${path}.${process.pid}.${Date.now().toString(36)}.tmp`
  return Effect.acquireRelease(
    Effect.try({
      try: () => fs.createWriteStream(temporary, { flags: "wx" }),
      catch: (error) => new OutputError({ message: `Cannot create ${temporary}: ${(error as Error).message}` })
    }).pipe(
      Effect.flatMap((stream) =>
        Effect.callback<fs.WriteStream, OutputError>((resume) => {
          stream.once("open", () => resume(Effect.succeed(stream)))
          stream.once("error", (error) => resume(Effect.fail(new OutputError({ message: `Cannot create ${temporary}: ${error.message}` }))))
        })
      )
    ),
    (stream, exit) =>
      Effect.callback<void>((resume) => void stream.end(() => resume(Effect.void))).pipe(
        Effect.andThen(Effect.sync(() => {
          if (exit._tag === "Success") fs.renameSync(temporary, path)
          else fs.rmSync(temporary, { force: true })
        }))
      )
  ).pipe(Effect.map((stream): Output => ({ write: writeTo(stream, path) })))
}

/** Rows as an aligned text table with a header, numbers aligned right. @internal */
export const table = (columns: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>): string => {
  const cells = rows.map((row) => row.map((cell) => typeof cell === "number" ? cell.toLocaleString("en-US") : cell))
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)))
  const numeric = columns.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === "number"))
  const line = (row: ReadonlyArray<string>) =>
    row.map((cell, i) => numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)).join("  ").trimEnd()
  return [line(columns), ...cells.map(line)].join("\n") + "\n"
}

/** A time for people: ISO 8601 in UTC to the second, or `-`. @internal */
export const showTime = (ms: number | null): string => ms === null ? "-" : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z")
