/**
 * What a server process of a whole test run does once its server is up (`pgServer.ts`,
 * `s3ServerMain.ts`, started by `scripts/test.mjs`): prints its `NAME=value` lines, and stops the
 * server and exits when its stdin closes (the runner ended, whichever way) — and, with `onSignals`,
 * on SIGTERM or SIGINT too.
 */
import process from "node:process"

/** Prints `lines`, then runs `stop` and exits once stdin closes (or a signal comes, with `onSignals`). */
export const serveUntilStdinCloses = (lines: ReadonlyArray<string>, stop: () => Promise<void>, options?: { readonly onSignals?: boolean }): void => {
  let stopping: Promise<void> | undefined
  const end = () => {
    stopping ??= stop().finally(() => process.exit(0))
  }
  process.stdin.on("end", end)
  process.stdin.on("close", end)
  process.stdin.resume()
  if (options?.onSignals === true) {
    process.on("SIGTERM", end)
    process.on("SIGINT", end)
  }
  for (const line of lines) console.log(line)
}
