/**
 * Helpers for tests that run a support script as a child process on the runtime running the test:
 * the command to start it, a child started in a scope with its output read by lines, and a timeout
 * for waiting on it.
 */
import { Effect, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
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

/** A running child process started by `spawnChild`. */
export interface RunningChild {
  readonly child: ChildProcess
  /** The complete stdout lines it printed so far. */
  readonly lines: () => ReadonlyArray<string>
  /** Everything it wrote to stderr so far. */
  readonly stderr: () => string
  /** Resolves with the first complete stdout line matching `pattern`; rejects if the child ends before one. */
  readonly line: (pattern: RegExp) => Promise<RegExpExecArray>
  /** Resolves when the child is gone and its output read. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Starts `test/support/<script>` with `args` as a child (see `childCommand`), its stdout read by lines;
 * it is SIGKILLed (if still running) when the scope closes.
 */
export const spawnChild = (script: string, args: ReadonlyArray<string>): Effect.Effect<RunningChild, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync((): RunningChild => {
      const { command, args: commandArgs } = childCommand(script, args)
      const child = spawn(command, commandArgs, { cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } })
      const lines: Array<string> = []
      const waiting = new Set<() => void>()
      let pending = ""
      let errors = ""
      let ended = false
      let exit = ""
      child.stdout!.setEncoding("utf8")
      child.stdout!.on("data", (chunk: string) => {
        pending += chunk
        const complete = pending.split("\n")
        pending = complete.pop()!
        lines.push(...complete)
        for (const wake of waiting) wake()
      })
      child.stderr!.setEncoding("utf8")
      child.stderr!.on("data", (chunk: string) => {
        errors += chunk
      })
      const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.on("close", (code, signal) => {
          ended = true
          exit = signal === null ? `exit code ${code}` : `signal ${signal}`
          for (const wake of waiting) wake()
          resolve({ code, signal })
        })
        child.on("error", (error) => {
          errors += `could not run ${command}: ${error.message}\n`
          ended = true
          for (const wake of waiting) wake()
          resolve({ code: null, signal: null })
        })
      })
      const line = (pattern: RegExp) =>
        new Promise<RegExpExecArray>((resolve, reject) => {
          const wake = () => {
            for (const text of lines) {
              const match = pattern.exec(text)
              if (match !== null) {
                waiting.delete(wake)
                return resolve(match)
              }
            }
            if (ended) {
              waiting.delete(wake)
              reject(new Error(`the child ended (${exit || "not started"}) before printing a line matching ${pattern}; stderr: ${errors}`))
            }
          }
          waiting.add(wake)
          wake()
        })
      return { child, lines: () => lines, stderr: () => errors, line, closed }
    }),
    ({ child, closed }) =>
      Effect.promise(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        await closed
      })
  )
