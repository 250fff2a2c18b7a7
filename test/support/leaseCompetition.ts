/**
 * Two OS processes competing for one lease of a shared CursorStore (`leaseChild.ts`): one holder
 * at a time, fencing tokens increase, no commit lost, and the first holder's stale lease moves
 * nothing afterwards.
 */
import { Effect, Option } from "effect"
import assert from "node:assert/strict"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { CursorStore } from "../../src/CursorStore.ts"
import { expectError } from "../conformance/harness.ts"
import { spawnChild, withTimeout } from "./childProcess.ts"
import { tempDirectory } from "./tempDirectory.ts"

/**
 * Runs two `leaseChild` processes over `backend` at `url` (`space`: the schema, key or store prefix) for
 * `rounds` each, and checks their log and `store` (the same storage, opened before they start so
 * that they only compete for the lease).
 */
export const leaseCompetition = (
  backend: "postgres" | "redis" | "nats",
  url: string,
  space: string,
  store: CursorStore,
  rounds: number
) =>
  Effect.gen(function*() {
    const directory = yield* tempDirectory("lease")
    const log = path.join(directory, "log")
    const children = yield* Effect.forEach(["A", "B"], (owner) => spawnChild("leaseChild", [backend, url, space, owner, log, String(rounds)]))
    yield* Effect.promise(() =>
      Promise.all(children.map(async (child, i) => {
        await withTimeout(child.line(/^done$/), 90_000, `lease child ${i} to finish`).catch((error) => {
          throw new Error(`${error instanceof Error ? error.message : String(error)}; stderr: ${child.stderr()}`)
        })
        assert.equal((await child.closed).code, 0, child.stderr())
      }))
    )
    const lines = (yield* Effect.promise(() => fs.readFile(log, "utf8"))).trim().split("\n").map((line) => line.split(" "))
    assert.equal(lines.length, 2 * 2 * rounds)
    const tokens: Array<number> = []
    for (let i = 0; i < lines.length; i += 2) {
      const [enter, exit] = [lines[i]!, lines[i + 1]!]
      assert.equal(enter[0], "enter", `line ${i + 1} must start a hold (no two holders at once): ${lines.map((l) => l.join(" ")).join(" | ")}`)
      assert.deepEqual(exit, ["exit", enter[1], enter[2]], `the hold of line ${i + 1} must end before another starts`)
      tokens.push(Number(enter[2]))
    }
    for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `fencing tokens must increase: ${tokens.join(", ")}`)
    assert.deepEqual(new Set(lines.map((line) => line[1])), new Set(["A", "B"]), "both processes held the lease")
    assert.equal(Option.getOrThrow(yield* store.get("orders")).seq, 2 * rounds, "every commit under the lease landed")
    const first = lines[0]!
    yield* expectError(
      store.commit("orders", 1_000, { name: "orders", owner: first[1]!, until: Number.MAX_SAFE_INTEGER, token: Number(first[2]) }),
      "LeaseLost"
    )
  })
