/**
 * Runs the `annals` command line as a user would, as a child process on the runtime running the
 * test: `bun src/cli/main.ts`, `deno run -A src/cli/main.ts` or `node .build/node/src/cli/main.js`.
 */
import process from "node:process"
import { fileURLToPath } from "node:url"
import { type Finished, runProcess, runtime } from "./programWorkspace.ts"

/** The program and arguments that start the command line on this runtime. */
export const cliCommand = (): { readonly command: string; readonly args: ReadonlyArray<string> } => {
  const main = fileURLToPath(new URL(`../../src/cli/main.${runtime === "node" ? "js" : "ts"}`, import.meta.url))
  return runtime === "deno"
    ? { command: process.execPath, args: ["run", "-A", main] }
    : { command: process.execPath, args: runtime === "node" ? ["--enable-source-maps", main] : [main] }
}

/** Options of `annals`. */
export interface CliOptions {
  /** Extra environment variables (ANNALS_STORE, AWS_…). */
  readonly env?: Record<string, string> | undefined
  /** Written to its standard input, which is then closed. */
  readonly stdin?: string | undefined
  readonly timeoutMs?: number | undefined
}

/** Runs `annals ...args` to its end (killed after the timeout), collecting its output. */
export const annals = (args: ReadonlyArray<string>, options: CliOptions = {}): Promise<Finished> => {
  const { args: prefix, command } = cliCommand()
  return runProcess(command, [...prefix, ...args], { timeoutMs: options.timeoutMs ?? 60_000, env: options.env, stdin: options.stdin })
}

/** `annals ...args`, asserting it exits with `code`; its output. */
export const annalsExpect = async (code: number, args: ReadonlyArray<string>, options?: CliOptions): Promise<Finished> => {
  const finished = await annals(args, options)
  if (finished.code !== code) {
    throw new Error(`annals ${args.join(" ")} exited with ${finished.code} (expected ${code})\nstdout: ${finished.stdout}\nstderr: ${finished.stderr}`)
  }
  return finished
}
