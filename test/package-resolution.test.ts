/**
 * Inside this repository `import … from "annals"` loads `src/`, never a `dist/` that may be stale or
 * missing: Bun through tsconfig.json's `paths`, Deno through deno.json's `imports`, Node (running the
 * compiled tree in .build/node) through the export condition `annals-repo` (README, "Development").
 */
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import process from "node:process"
import { test } from "node:test"
import { promisify } from "node:util"
import { childCommand } from "./support/childProcess.ts"

test("package resolution: annals, annals/file, annals/testing, annals/postgres, annals/s3, annals/redis and annals/nats resolve to the repository's src on this runtime", async () => {
  const { command, args } = childCommand("resolveAnnals", [])
  const nodeFlags = "Deno" in globalThis || "Bun" in globalThis ? [] : ["--conditions=annals-repo"]
  const { stdout } = await promisify(execFile)(command, [...nodeFlags, ...args], { cwd: process.cwd() })
  assert.deepEqual(JSON.parse(stdout), { annals: true, "annals/file": true, "annals/testing": true, "annals/postgres": true, "annals/s3": true, "annals/redis": true, "annals/nats": true })
})
