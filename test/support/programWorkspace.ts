/**
 * A throwaway TypeScript project for the programs of a Markdown document: one file per program,
 * the document's tsconfig, `annals` and its subpaths (`file`, `testing`, `postgres`, `s3`, `redis`, `nats`) mapped to this repository's `src` (never to a
 * `dist/` that may be stale), one `tsc` over all of them, and the command that runs a program on
 * the runtime running the test.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import process from "node:process"
import type { Program } from "./markdownPrograms.ts"

/** The runtime running this code. */
export const runtime: "bun" | "deno" | "node" = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node"

/** What a finished process wrote, and how it ended. */
export interface Finished {
  readonly code: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `command` to its end (killed after `timeoutMs`), collecting its output; `env` adds to this
 * process' environment, `stdin` is written to its standard input (else it is closed at once).
 */
export const runProcess = (
  command: string,
  args: ReadonlyArray<string>,
  options: {
    readonly cwd?: string | undefined
    readonly timeoutMs: number
    readonly env?: Record<string, string> | undefined
    readonly stdin?: string | undefined
  }
): Promise<Finished> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...options.env },
      stdio: ["pipe", "pipe", "pipe"]
    })
    child.stdin.end(options.stdin ?? "")
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => stdout += chunk)
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk)
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs)
    child.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })

/** The command that runs the script `file` (TypeScript or JavaScript) on this runtime; Deno with `denoFlags`. */
export const scriptCommand = (
  file: string,
  denoFlags: ReadonlyArray<string> = ["-A"]
): { readonly command: string; readonly args: ReadonlyArray<string> } =>
  runtime === "deno"
    ? { command: process.execPath, args: ["run", ...denoFlags, file] }
    : { command: process.execPath, args: runtime === "node" ? ["--enable-source-maps", file] : [file] }

/** What the README says a program on the file layers needs from Deno (the README's programs run with exactly these). */
const denoPermissions = ["--no-prompt", "--allow-read", "--allow-write", "--allow-env", "--allow-sys=hostname"]

/** A program that imports a server layer also needs the network, as the README says. */
const denoNetwork = (source: string): ReadonlyArray<string> =>
  /from "annals\/(postgres|redis|s3|nats)"/.test(source) ? ["--allow-net"] : []

const tsc = (root: string, project: string) =>
  runProcess(path.join(root, "node_modules", ".bin", "tsc"), ["-p", project, "--pretty", "false"], {
    cwd: root,
    timeoutMs: 300_000
  })

/** A fresh directory under the repository's `.build/`, where `effect` and the type packages resolve. */
const buildDirectory = async (root: string, prefix: string) => {
  await fs.mkdir(path.join(root, ".build"), { recursive: true })
  return fs.mkdtemp(path.join(root, ".build", prefix))
}

/**
 * Compiles a project of two files, `src/main.ts` importing `./greeting.ts`, with `tsconfig` exactly as
 * given, then runs the `dist/main.js` it should produce: a recommended tsconfig.json works as written.
 */
export const compileProject = async (
  root: string,
  tsconfig: unknown
): Promise<{ readonly compiled: Finished; readonly ran: Finished | undefined }> => {
  const directory = await buildDirectory(root, "tsconfig-")
  try {
    await fs.mkdir(path.join(directory, "src"))
    await fs.writeFile(path.join(directory, "package.json"), JSON.stringify({ private: true, type: "module" }))
    await fs.writeFile(path.join(directory, "tsconfig.json"), JSON.stringify(tsconfig))
    await fs.writeFile(path.join(directory, "src", "greeting.ts"), `export const greeting: string = "compiled"\n`)
    await fs.writeFile(path.join(directory, "src", "main.ts"), `import { greeting } from "./greeting.ts"\nconsole.log(greeting)\n`)
    const compiled = await tsc(root, directory)
    const main = path.join(directory, "dist", "main.js")
    const exists = await fs.stat(main).then(() => true, () => false)
    if (!exists) return { compiled, ran: undefined }
    const { command, args } = scriptCommand(main)
    return { compiled, ran: await runProcess(command, args, { cwd: directory, timeoutMs: 60_000 }) }
  } finally {
    await fs.rm(directory, { recursive: true, force: true })
  }
}

/** The repository root: the nearest directory above `from` whose package.json is annals'. */
export const repositoryRoot = async (from: string): Promise<string> => {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const manifest = await fs.readFile(path.join(dir, "package.json"), "utf8").catch(() => undefined)
    if (manifest !== undefined && (JSON.parse(manifest) as { name?: string }).name === "annals") return dir
    if (path.dirname(dir) === dir) throw new Error(`no annals package.json above ${from}`)
  }
}

/** A prepared workspace: where each program's TypeScript and compiled JavaScript are. */
export interface Workspace {
  readonly directory: string
  readonly typescript: (program: Program) => string
  readonly javascript: (program: Program) => string
  /** `tsc` over every program (and the `src` they import), output mapped to the document's lines. */
  readonly compile: () => Promise<{ readonly ok: boolean; readonly diagnostics: string }>
  /** The command that runs `program` on this runtime. */
  readonly command: (program: Program) => { readonly command: string; readonly args: ReadonlyArray<string> }
  readonly remove: () => Promise<void>
}

/**
 * Writes the programs into a fresh directory under `.build/` of the repository (so that `effect` and
 * the type packages resolve from its node_modules, as in a project that installed them), with a
 * tsconfig.json made of `compilerOptions` plus what only this setup needs: `paths` from `annals` to
 * `src`, and an output directory that is itself a package named `annals` for Node to run from.
 */
export const prepare = async (
  root: string,
  document: string,
  programs: ReadonlyArray<Program>,
  compilerOptions: Record<string, unknown>
): Promise<Workspace> => {
  const directory = await buildDirectory(root, "readme-")
  const out = path.join(directory, "out")
  const base = (program: Program) => `${path.basename(document, ".md")}-${program.line}`
  const typescript = (program: Program) => path.join(directory, `${base(program)}.ts`)
  const javascript = (program: Program) =>
    path.join(out, path.relative(root, directory), `${base(program)}.js`)
  for (const program of programs) await fs.writeFile(typescript(program), program.source)
  const src = (file: string) => [path.relative(directory, path.join(root, "src", file))]
  await fs.writeFile(
    path.join(directory, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        ...compilerOptions,
        noEmit: false,
        rootDir: path.relative(directory, root),
        outDir: "out",
        sourceMap: true,
        paths: {
          annals: src("index.ts"),
          "annals/file": src("file/index.ts"),
          "annals/testing": src("testing/index.ts"),
          "annals/postgres": src("postgres/index.ts"),
          "annals/s3": src("s3/index.ts"),
          "annals/redis": src("redis/index.ts"),
          "annals/nats": src("nats/index.ts")
        }
      },
      files: programs.map((program) => path.basename(typescript(program)))
    }, null, 2)
  )
  await fs.mkdir(out, { recursive: true })
  await fs.writeFile(
    path.join(out, "package.json"),
    JSON.stringify({
      name: "annals",
      private: true,
      type: "module",
      exports: {
        ".": "./src/index.js",
        "./file": "./src/file/index.js",
        "./testing": "./src/testing/index.js",
        "./postgres": "./src/postgres/index.js",
        "./s3": "./src/s3/index.js",
        "./redis": "./src/redis/index.js",
        "./nats": "./src/nats/index.js"
      }
    })
  )

  const compile = async () => {
    const result = await tsc(root, directory)
    const programFile = new RegExp(`^.*?${path.basename(document, ".md")}-\\d+\\.ts\\((\\d+),(\\d+)\\)`, "gm")
    const diagnostics = (result.stdout + result.stderr).replace(programFile, `${document}($1,$2)`).trim()
    return { ok: result.code === 0, diagnostics }
  }

  const command = (program: Program) =>
    runtime === "node"
      ? scriptCommand(javascript(program))
      : scriptCommand(typescript(program), [...denoPermissions, ...denoNetwork(program.source), "--no-lock", `--config=${path.join(root, "deno.json")}`])

  return {
    directory,
    typescript,
    javascript,
    compile,
    command,
    remove: () => fs.rm(directory, { recursive: true, force: true })
  }
}
