#!/usr/bin/env node
/**
 * The `annals` command line (`npx annals`, `bunx annals`, `deno run -A npm:annals`): inspect,
 * verify, export, import and restore the stores of an annals application on any backend. `annals
 * --help` lists the commands; the README's "Operating annals" shows them at work.
 *
 * Exit status: 0 done; 1 `verify` found problems; 2 bad arguments; 3 the store or archive could not
 * be opened (missing, unreachable, damaged beyond opening); 4 the command failed on the way.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as CliError from "effect/cli/CliError"
import * as Command from "effect/cli/Command"
import process from "node:process"
import { CommandFailed, command, ExitCode } from "./internal/commands.ts"
import * as Platform from "./internal/platform.ts"

const VERSION = "0.1.0"

const args = process.argv.slice(2)

// A reader that stops early (`annals dump | head`) closes the pipe: stop quietly, as Unix tools do.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0)
  throw error
})

const exit = await Effect.runPromiseExit(Command.run(command, { version: VERSION }).pipe(Effect.provide(Platform.layer(args))))

if (Exit.isFailure(exit)) {
  const failure = exit.cause.reasons.find(Cause.isFailReason)?.error
  if (failure instanceof CommandFailed) {
    if (failure.message !== "") process.stderr.write(`annals: ${failure.message}\n`)
    process.exitCode = failure.exitCode
  } else if (CliError.isCliError(failure)) {
    // effect/cli has printed what was wrong with the arguments, and the help.
    process.exitCode = ExitCode.usage
  } else if (failure === undefined && Cause.hasInterruptsOnly(exit.cause)) {
    process.exitCode = 130
  } else {
    process.stderr.write(`annals: unexpected failure\n${Cause.pretty(exit.cause)}\n`)
    process.exitCode = ExitCode.failed
  }
}
