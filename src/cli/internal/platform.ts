/**
 * What `effect/cli` needs from the platform (arguments, standard output and error, the terminal's
 * width), from `node:process` — which Bun, Deno and Node all provide. The command line neither
 * prompts nor spawns processes, so those services fail if ever used.
 * @internal
 */
import { Effect, FileSystem, Layer, Path, Sink, Stdio, Stream, Terminal } from "effect"
import { ChildProcessSpawner } from "effect/process"
import process from "node:process"

const writer = (stream: NodeJS.WriteStream) => () =>
  Sink.forEach((chunk: string | Uint8Array) => Effect.sync(() => void stream.write(chunk)))

/** `effect/cli`'s environment on this process; `args` are the command's arguments. @internal */
export const layer = (args: ReadonlyArray<string>): Layer.Layer<
  FileSystem.FileSystem | Path.Path | Terminal.Terminal | ChildProcessSpawner.ChildProcessSpawner | Stdio.Stdio
> =>
  Layer.mergeAll(
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
