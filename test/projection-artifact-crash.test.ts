/**
 * Projection artifact exports under SIGKILL: a child process (`support/artifactChild.ts`) exports
 * round after round of several data files, some of a few MB, and is killed at one of four kinds of
 * moment in turn, with seeded random delays: during its first export (a delay after it is ready);
 * after a few exports; a few ms after the temporary directory of its first export appears (while it
 * writes the data files); as soon as its first round directory appears (right after the rename, where
 * a writer that renamed before writing everything would be caught). After each kill, on the
 * directory it left:
 *
 * - every entry is a complete round (with a MANIFEST.json) or a temporary directory: no round
 *   directory without a manifest;
 * - the complete rounds are 0, 1, 2 … without a gap, including every round the child reported
 *   exported, each exactly the artifact it meant to write (manifest and bytes), and
 *   `readLatestArtifact` reads the newest, verified;
 * - the next child starts after the newest complete round, temporary directories beside it or not;
 * - `removeIncomplete` (after every other kill, and at the end) leaves no temporary directory and
 *   no complete round touched.
 *
 * Seeded and repeatable: ANNALS_CRASH_SEED changes the seed, ANNALS_CRASH_RUNS the number of
 * killed children (default 10). Every assertion message carries the seed.
 */
import { Effect } from "effect"
import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { projectionDirectory, roundName } from "../src/internal/projectionArtifactFormat.ts"
import { CRASH_PROJECTION, CRASH_VERSION, crashArtifact } from "./support/artifactWorkload.ts"
import { spawnChild, withTimeout } from "./support/childProcess.ts"
import { listArtifacts, readLatestArtifact, removeIncomplete } from "./support/directoryArtifacts.ts"
import { prng } from "./support/ledger.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

const SEED = Number(process.env["ANNALS_CRASH_SEED"] ?? 20_240_613)
const RUNS = Number(process.env["ANNALS_CRASH_RUNS"] ?? 10)
/** Longest wait for a child's line or exit. */
const CHILD_TIMEOUT_MS = 30_000

const ROUND_NAME = /^\d{20}$/
const TEMP_NAME = /^\.\d{20}\.[0-9a-f]+\.tmp$/

const promise = <A>(run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: (error) => error })

/** What a check found: the complete rounds and how many temporary directories lay beside them. */
interface Found {
  readonly rounds: number
  readonly temps: number
}

/**
 * Checks everything the module doc promises of the artifacts under `root`; `acknowledged` is the
 * highest round a child reported exported (-1 if none).
 */
const check = async (root: string, acknowledged: number, context: string): Promise<Found> => {
  const listed = await listArtifacts(root, CRASH_PROJECTION, CRASH_VERSION)
  const rounds = listed.map((artifact) => artifact.manifest.round)
  assert.deepEqual(rounds, Array.from({ length: rounds.length }, (_, i) => i), `${context}: the complete rounds are 0, 1, 2 … without a gap`)
  assert.ok(rounds.length > acknowledged, `${context}: round ${acknowledged} was reported exported, but only ${rounds.length} rounds are complete`)
  let temps = 0
  if (listed.length > 0) {
    const parent = path.dirname(listed[0]!.directory)
    for (const entry of await fs.readdir(parent)) {
      if (TEMP_NAME.test(entry)) {
        temps++
        continue
      }
      assert.match(entry, ROUND_NAME, `${context}: ${path.join(parent, entry)} is neither a round nor a temporary directory`)
      await fs.access(path.join(parent, entry, "MANIFEST.json")).catch(() => assert.fail(`${context}: the round directory ${path.join(parent, entry)} has no MANIFEST.json`))
    }
  }
  for (const { directory, manifest } of listed) {
    const expected = crashArtifact(manifest.round, manifest.writer)
    const where = `${context}: round ${manifest.round} (${directory})`
    assert.match(manifest.writer, /^child-\d+$/, `${where}: the writer`)
    assert.deepEqual(
      { ...manifest, files: manifest.files.map((file) => [file.name, file.size]) },
      {
        format: manifest.format,
        formatVersion: manifest.formatVersion,
        ...expected,
        files: expected.files.map((file) => [file.name, file.bytes.length])
      },
      `${where}: the manifest`
    )
    for (const file of expected.files) {
      const onDisk = await fs.readFile(path.join(directory, file.name))
      assert.ok(onDisk.equals(Buffer.from(file.bytes.buffer, file.bytes.byteOffset, file.bytes.byteLength)), `${where}: the bytes of ${file.name}`)
    }
  }
  const latest = await readLatestArtifact(root, CRASH_PROJECTION, CRASH_VERSION)
  assert.equal(latest?.manifest.round, rounds[rounds.length - 1], `${context}: readLatestArtifact reads the newest complete round`)
  if (latest !== undefined) assert.deepEqual([...latest.files.keys()], latest.manifest.files.map((file) => file.name), `${context}: the files it read`)
  return { rounds: rounds.length, temps }
}

/**
 * When a child is killed: a delay after it is ready (in its first export), a delay after its first
 * export, a few ms after the temporary directory of its first export appears (while it writes the
 * data files), or as soon as its first round directory appears (right after the rename).
 */
type Moment = "ready" | "export" | "temp" | "rename"

/** The moments in turn, run after run. */
const MOMENTS: ReadonlyArray<Moment> = ["export", "temp", "rename", "ready"]

const describeMoment: Record<Moment, string> = {
  ready: "it was ready",
  export: "its first export",
  temp: "the temporary directory of its first export appeared",
  rename: "its first round directory appeared (right after the rename)"
}

/**
 * Returns as soon as an entry matching `entry` appears in the projection's directory under `root`,
 * looking in a tight synchronous loop (bounded by `CHILD_TIMEOUT_MS`) so that the kill that follows
 * lands at that step of the export: right after the rename, for example, where a writer that renamed
 * before writing everything would leave a round without its manifest or data.
 */
const awaitEntry = (root: string, entry: RegExp, context: string): void => {
  const parent = projectionDirectory(root, CRASH_PROJECTION, CRASH_VERSION)
  const deadline = Date.now() + CHILD_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (fsSync.existsSync(parent) && fsSync.readdirSync(parent).some((name) => entry.test(name))) return
  }
  assert.fail(`${context}: no entry matching ${entry} appeared in ${parent} within ${CHILD_TIMEOUT_MS} ms`)
}

/** One killed child on `root`, which holds `before` complete rounds: spawn, kill at a seeded moment, check. */
const killRun = (root: string, run: number, before: number) =>
  Effect.scoped(Effect.gen(function*() {
    const seed = SEED + 1000 + run
    const random = prng(seed)
    const kill = MOMENTS[run % MOMENTS.length]!
    const delay = Math.floor(random() * { ready: 120, export: 250, temp: 10, rename: 0 }[kill])
    const context = `seed ${SEED}, run ${run} (seed ${seed}, killed ${delay} ms after ${describeMoment[kill]})`
    const running = yield* spawnChild("artifactChild", [root])
    const ready = yield* promise(() => withTimeout(running.line(/^ready (\d+)$/), CHILD_TIMEOUT_MS, "the child's ready line")).pipe(
      Effect.mapError((error) => new Error(`${context}: ${String(error)}; stderr: ${running.stderr()}`))
    )
    assert.equal(Number(ready[1]), before, `${context}: the child starts after the newest complete round`)
    if (kill === "export") {
      yield* promise(() => withTimeout(running.line(/^exported \d+$/), CHILD_TIMEOUT_MS, "the child's first export")).pipe(
        Effect.mapError((error) => new Error(`${context}: ${String(error)}; stderr: ${running.stderr()}`))
      )
    }
    if (kill === "temp" || kill === "rename") {
      const entry = new RegExp(kill === "temp" ? `^\\.${roundName(before)}\\.` : `^${roundName(before)}$`)
      yield* Effect.sync(() => awaitEntry(root, entry, context))
    }
    if (delay > 0) yield* Effect.sleep(delay)
    running.child.kill("SIGKILL")
    const exit = yield* promise(() => withTimeout(running.closed, CHILD_TIMEOUT_MS, "the child to end"))
    assert.equal(exit.signal, "SIGKILL", `${context}: the child should die of SIGKILL, but ended with code ${exit.code}; stderr: ${running.stderr()}`)
    const acknowledged = Math.max(-1, ...running.lines().flatMap((line) => /^exported (\d+)$/.exec(line)?.slice(1).map(Number) ?? []))
    const found = yield* promise(() => check(root, acknowledged, context))
    if (run % 2 === 1) yield* promise(() => removeIncompleteAndCheck(root, found, context))
    return { found, kill }
  }))

/** Runs removeIncomplete and checks that it removed every temporary directory and nothing else. */
const removeIncompleteAndCheck = async (root: string, found: Found, context: string) => {
  assert.equal(await removeIncomplete(root, CRASH_PROJECTION, CRASH_VERSION), found.temps, `${context}: removeIncomplete removes every temporary directory`)
  const after = await check(root, found.rounds - 1, `${context}, after removeIncomplete`)
  assert.deepEqual(after, { rounds: found.rounds, temps: 0 }, `${context}: after removeIncomplete`)
}

test(`Projection artifact crash: SIGKILL at ${RUNS} moments while exporting; complete rounds verify, nothing else but temporary directories, which removeIncomplete removes`, () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const root = yield* tempDirectory("artifact-kill")
    let rounds = 0
    let carried = 0
    let midWrite = 0
    const moments: Record<Moment, number> = { ready: 0, export: 0, temp: 0, rename: 0 }
    for (let run = 0; run < RUNS; run++) {
      const { found, kill } = yield* killRun(root, run, rounds)
      moments[kill]++
      if (found.temps > carried) midWrite++
      rounds = found.rounds
      carried = run % 2 === 1 ? 0 : found.temps
    }
    const context = `seed ${SEED}, at the end`
    const last = yield* promise(() => check(root, rounds - 1, context))
    yield* promise(() => removeIncompleteAndCheck(root, last, context))
    assert.ok(midWrite > 0, `seed ${SEED}: no kill left a temporary directory of its own: the kills never landed mid-export, so this tested little`)
    assert.ok(last.rounds > RUNS / 2, `seed ${SEED}: only ${last.rounds} rounds were exported in ${RUNS} runs`)
    process.stdout.write(`# seed ${SEED}: ${RUNS} kills (${JSON.stringify(moments)}), ${midWrite} of them mid-export, ${last.rounds} rounds complete\n`)
  }))))
