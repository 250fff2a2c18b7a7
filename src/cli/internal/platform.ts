/**
 * What `effect/cli` needs from the platform (arguments, standard output and error, the terminal's
 * width), from `node:process` — which Bun, Deno and Node all provide. The command line neither
 * prompts nor spawns processes, so those services fail if ever used, and `--wizard` (which
 * prompts) is not offered. What is wrong with the arguments goes to standard error, with the help:
 * standard output is for the data.
 * @internal
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Path from "effect/Path"
import * as Sink from "effect/Sink"
import * as Stdio from "effect/Stdio"
import * as Stream from "effect/Stream"
import * as Terminal from "effect/Terminal"
import * as CliConfig from "effect/cli/CliConfig"
import * as CliOutput from "effect/cli/CliOutput"
import * as GlobalFlag from "effect/cli/GlobalFlag"
import * as ChildProcessSpawner from "effect/process/ChildProcessSpawner"
import process from "node:process"

const writer = (stream: NodeJS.WriteStream) => () =>
  Sink.forEach((chunk: string | Uint8Array) => Effect.sync(() => void stream.write(chunk)))

/** `effect/cli`'s presenter, with the help of a bad invocation on standard error too. */
const presenter: CliOutput.Presenter = {
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Console.consoleWith((console) =>
        Effect.provideService(CliOutput.defaultPresenter.present(event), Console.Console, { ...console, log: console.error }))
      : CliOutput.defaultPresenter.present(event)
}

/** `effect/cli`'s environment on this process; `args` are the command's arguments. @internal */
export const layer = (args: ReadonlyArray<string>): Layer.Layer<
  FileSystem.FileSystem | Path.Path | Terminal.Terminal | ChildProcessSpawner.ChildProcessSpawner | Stdio.Stdio
> =>
  Layer.mergeAll(
    CliConfig.layer({ builtIns: GlobalFlag.BuiltIns.filter((flag) => flag !== GlobalFlag.Wizard) }),
    CliOutput.layerPresenter(presenter),
    FileSystem.layerNoop({}),
    Path.layer,
    Layer.succeed(
      Stdio.Stdio,
      Stdio.make({
        args: Effect.succeed(args),
        stdout: writer(process.stdout),
        stderr: writer(process.stderr),
        stdin: Stream.empty,
        stdoutIsTerminal: Effect.sync(() => process.stdout.isTTY === true),
        stderrIsTerminal: Effect.sync(() => process.stderr.isTTY === true)
      })
    ),
    Layer.succeed(
      Terminal.Terminal,
      Terminal.make({
        columns: Effect.sync(() => process.stdout.columns ?? 80),
        rows: Effect.sync(() => process.stdout.rows ?? 24),
        size: Effect.die("annals: the command line does not watch the terminal's size"),
        readInput: Effect.die("annals: the command line does not read the terminal"),
        readLine: Effect.die("annals: the command line does not prompt"),
        display: (text) => Effect.sync(() => void process.stdout.write(text))
      })
    ),
    Layer.succeed(
      ChildProcessSpawner.ChildProcessSpawner,
      ChildProcessSpawner.make(() => Effect.die("annals: the command line does not spawn processes"))
    )
  )
