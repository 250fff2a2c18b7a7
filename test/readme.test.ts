/**
 * The README's code runs: every TypeScript block is type-checked (one `tsc` over all of them, with
 * the tsconfig the README recommends) and run on the runtime running this test, twice, each time in
 * the same fresh temporary directory as its working directory. The first run must print the lines the
 * block states (`// → TEXT`); both must exit with code 0 and write nothing to stderr — so a block
 * also runs again on the data its first run left behind, as a user rerunning it would.
 * The conventions (markers, stated output) are in README.md, "Development".
 */
import assert from "node:assert/strict"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { after, test } from "node:test"
import { fileURLToPath } from "node:url"
import { documentedTsconfig, type Program, programs } from "./support/markdownPrograms.ts"
import {
  compileProject,
  type Finished,
  prepare,
  repositoryRoot,
  runProcess,
  runtime,
  type Workspace
} from "./support/programWorkspace.ts"

const root = await repositoryRoot(path.dirname(fileURLToPath(import.meta.url)))
const readme = await fs.readFile(path.join(root, "README.md"), "utf8")
const all = programs(readme, "README.md")

let prepared: Promise<Workspace> | undefined
let compiled: ReturnType<Workspace["compile"]> | undefined
/** The workspace, written by whichever test needs it first (so each test reports why it could not be). */
const workspace = () =>
  prepared ??= prepare(root, "README.md", all, documentedTsconfig(readme, "README.md").compilerOptions)
/** The one `tsc` run over every block (its JavaScript is what Node runs). */
const compile = () => compiled ??= workspace().then((made) => made.compile())
after(async () => {
  const made = await prepared?.catch(() => undefined)
  await made?.remove()
})

/** The stated lines missing from `stdout`, which must hold them in order (other lines may come between). */
const missing = (expected: ReadonlyArray<string>, stdout: string): ReadonlyArray<string> => {
  const lines = stdout.split("\n").map((line) => line.trim())
  let at = 0
  const absent: Array<string> = []
  for (const line of expected) {
    const found = lines.indexOf(line, at)
    if (found === -1) absent.push(line)
    else at = found + 1
  }
  return absent
}

const describeRun = (program: Program, run: string, finished: Finished) =>
  `${program.name}, ${run} run on ${runtime}: exit code ${finished.code}${finished.signal ? ` (${finished.signal})` : ""}\n` +
  `--- stdout\n${finished.stdout}--- stderr\n${finished.stderr}---`

test("README: it has TypeScript blocks, and every block that runs states what it prints", () => {
  const fences = readme.split("\n").filter((line) => /^\s*```(ts|typescript)\s*$/.test(line)).length
  assert.ok(fences > 0, "README.md has no TypeScript blocks")
  assert.equal(all.flatMap((program) => program.blocks).length, fences, "every TypeScript block is part of a program")
  const silent = all.filter((program) => program.run && program.expected.length === 0).map((program) => program.name)
  assert.deepEqual(silent, [], "these blocks run but state no output (a line ending in // → TEXT)")
})

test("README: every TypeScript block type-checks (strict, with the README's tsconfig)", async () => {
  const { ok, diagnostics } = await compile()
  assert.ok(ok, `tsc failed:\n${diagnostics}`)
})

test("README: its tsconfig.json, as written, compiles src/ into dist/", async () => {
  const { compiled, ran } = await compileProject(root, documentedTsconfig(readme, "README.md"))
  assert.equal(compiled.code, 0, `tsc failed:\n${compiled.stdout}${compiled.stderr}`)
  assert.ok(ran !== undefined, "tsc wrote no dist/main.js")
  assert.equal(ran.stdout.trim(), "compiled", ran.stderr)
})

for (const program of all) {
  if (!program.run) continue
  test(`README: ${program.name} runs and prints what it says`, async () => {
    if (runtime === "node") await compile()
    const cwd = await fs.mkdtemp(path.join(os.tmpdir(), "annals-readme-run-"))
    try {
      const { command, args } = (await workspace()).command(program)
      for (const run of ["first", "second"]) {
        const finished = await runProcess(command, args, { cwd, timeoutMs: 60_000 })
        assert.equal(finished.code, 0, describeRun(program, run, finished))
        assert.equal(finished.stderr.trim(), "", `unexpected stderr: ${describeRun(program, run, finished)}`)
        if (run === "first") {
          const absent = missing(program.expected, finished.stdout)
          assert.deepEqual(absent, [], `did not print (in this order) what it states: ${describeRun(program, run, finished)}`)
        }
      }
    } finally {
      await fs.rm(cwd, { recursive: true, force: true })
    }
  })
}
