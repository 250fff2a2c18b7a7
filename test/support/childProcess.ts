/**
 * Helpers for tests that run a support script as a child process on the runtime running the test:
 * the command to start it, and a timeout for waiting on it.
 */
import * as path from "node:path"
import process from "node:process"
import { fileURLToPath } from "node:url"

const here = fileURLToPath(import.meta.url)

/**
 * The command and arguments that run `test/support/<script>` (named without extension) with `args`:
 * Bun and Node run the script directly (Node runs the tsc build, a `.js` beside this `.js`), Deno
 * with `run -A`.
 */
export const childCommand = (script: string, args: ReadonlyArray<string>): { command: string; args: Array<string> } => {
  const file = path.join(path.dirname(here), `${script}${path.extname(here)}`)
  if ("Deno" in globalThis) return { command: process.execPath, args: ["run", "-A", file, ...args] }
  return { command: process.execPath, args: [file, ...args] }
}

/** `promise`, or a rejection naming `what` after `ms` milliseconds. */
export const withTimeout = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}
