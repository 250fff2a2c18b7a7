#!/usr/bin/env node
// Runs the test suite under Bun, Deno and Node — Node beside Bun-then-Deno (ANNALS_TEST_LANES, below) — and prints one closing line per
// runtime (`bun: 120 passed, 0 failed`). Exits non-zero if any runtime fails or reports no tests.
// ANNALS_RUNTIMES=bun,node limits the runtimes; extra arguments are passed to every runner.
// The PostgreSQL suites share one embedded server started here (test/support/pgServer.ts, run by Bun)
// and stopped at the end, passed to the runners as ANNALS_PG_URL — unless ANNALS_PG_URL is already set.
// Likewise the S3 suites share one radosgw (test/support/s3ServerMain.ts): ANNALS_S3_ENDPOINT,
// ANNALS_S3_ACCESS_KEY and ANNALS_S3_SECRET_KEY (none is started when radosgw is not installed). And a
// stream is kept on the machine's NATS server for the run (test/support/natsAnchor.ts: nats-server 2.9
// removes an account's store directory with its last stream, failing another file's stream creation).
import { spawn } from "node:child_process"
import { readdirSync, rmSync } from "node:fs"
import { join } from "node:path"

const bin = (name) => join("node_modules", ".bin", name)
// Every compiled test file under `dir`, subdirectories included (test/runtime/, test/conformance/ …).
const testFiles = (dir) =>
  readdirSync(dir, { recursive: true }).filter((f) => f.endsWith(".test.js")).sort().map((f) => join(dir, f))

/**
 * Runs `test/support/<script>` (by Bun), a server for the whole run that prints `NAME=value` lines
 * once ready and stops when its stdin closes. Resolves with those variables (every one of `names`)
 * and a function that stops it — or with undefined if it exits cleanly first (no server here: the
 * suites then say so themselves).
 */
const startServer = (script, names) =>
  new Promise((resolve, reject) => {
    const child = spawn(bin("bun"), [join("test", "support", script)], { stdio: ["pipe", "pipe", "inherit"] })
    let output = ""
    const exited = new Promise((done) => child.on("close", done))
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk) => {
      output += chunk
      const env = Object.fromEntries([...output.matchAll(/^(ANNALS_\w+)=(\S+)$/gm)].map((match) => [match[1], match[2]]))
      if (names.every((name) => name in env)) resolve({ env, stop: () => (child.stdin.end(), exited) })
    })
    exited.then((code) =>
      code === 0 ? resolve(undefined) : reject(new Error(`${script} exited (code ${code}) before it was ready: ${output}`))
    )
  })

/** Runs `command`; its output is echoed as it comes, or only kept (`quiet`: printed by the caller when done). */
const run = (command, args, quiet = false) =>
  new Promise((resolve) => {
    let output = ""
    const child = spawn(command, args, { env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" } })
    const tee = (target) => (chunk) => {
      output += chunk
      if (!quiet) target.write(chunk)
    }
    child.stdout.on("data", tee(process.stdout))
    child.stderr.on("data", tee(process.stderr))
    child.on("close", (code) => resolve({ code: code ?? 1, output }))
  })

/** Writes `text` to stdout and resolves once it is handed to the pipe: `process.exit` drops queued writes. */
const flushed = (text) => new Promise((resolve) => process.stdout.write(text, resolve))

const lastMatch = (output, pattern) => {
  const all = [...output.matchAll(pattern)]
  return all.length === 0 ? undefined : Number(all[all.length - 1][1])
}

const runtimes = {
  bun: async (extra, quiet) => {
    const { code, output } = await run(bin("bun"), ["test", "--timeout", "120000", ...extra, "test/"], quiet)
    return { code, output, passed: lastMatch(output, /^\s*(\d+) pass$/gm), failed: lastMatch(output, /^\s*(\d+) fail$/gm) }
  },
  deno: async (extra, quiet) => {
    const { code, output } = await run(bin("deno"), ["test", "-A", ...extra, "test/"], quiet)
    return {
      code,
      output,
      passed: lastMatch(output, /(\d+) passed/g),
      failed: lastMatch(output, /(\d+) failed/g)
    }
  },
  node: async (extra, quiet) => {
    // A fresh build: compiled files of tests that were removed or moved must not run.
    rmSync(join(".build", "node"), { recursive: true, force: true })
    const build = await run(bin("tsc"), ["-p", "tsconfig.node.json"], quiet)
    if (build.code !== 0) return { code: build.code, output: build.output, passed: undefined, failed: undefined }
    const files = testFiles(join(".build", "node", "test"))
    const { code, output } = await run(process.execPath, [
      "--enable-source-maps",
      // Modules of examples/ import "annals" as users do: resolve it to the compiled src/ (README, "Development").
      "--conditions=annals-repo",
      "--test",
      "--test-reporter=tap",
      ...extra,
      ...files
    ], quiet)
    return { code, output, passed: lastMatch(output, /^# pass (\d+)$/gm), failed: lastMatch(output, /^# fail (\d+)$/gm) }
  }
}

const selected = (process.env.ANNALS_RUNTIMES ?? "bun,deno,node").split(",").map((s) => s.trim()).filter(Boolean)
const extra = process.argv.slice(2)
const results = []
const servers = (await Promise.all([
  process.env.ANNALS_PG_URL ? undefined : startServer("pgServer.ts", ["ANNALS_PG_URL"]),
  process.env.ANNALS_S3_ENDPOINT ? undefined : startServer("s3ServerMain.ts", ["ANNALS_S3_ENDPOINT", "ANNALS_S3_ACCESS_KEY", "ANNALS_S3_SECRET_KEY"]),
  startServer("natsAnchor.ts", ["ANNALS_NATS_ANCHOR"])
])).filter((server) => server !== undefined)
for (const server of servers) Object.assign(process.env, server.env)
for (const name of selected) {
  if (runtimes[name] === undefined) {
    console.error(`unknown runtime ${name} (expected bun, deno or node)`)
    process.exit(2)
  }
}
// ANNALS_TEST_LANES=2 (the default with all three) runs Node beside Bun-then-Deno: the suites wait on
// servers, fsyncs and timers much of the time, and every case works in a store of its own (random
// schemas, prefixes, buckets, temporary directories). A lane's output is printed when a runtime ends.
// ANNALS_TEST_LANES=1 runs them one after another, printing as they go.
const lanes = Number(process.env.ANNALS_TEST_LANES ?? 2) > 1 && selected.length > 1
  ? [selected.filter((name) => name === "node"), selected.filter((name) => name !== "node")].filter((lane) => lane.length > 0)
  : [selected]
const quiet = lanes.length > 1
await Promise.all(lanes.map(async (lane) => {
  for (const name of lane) {
    if (!quiet) console.log(`\n=== ${name} ===`)
    const result = await runtimes[name](extra, quiet)
    if (quiet) await flushed(`\n=== ${name} ===\n${result.output}`)
    results.push([name, result])
  }
}))
results.sort(([a], [b]) => selected.indexOf(a) - selected.indexOf(b))

await Promise.all(servers.map((server) => server.stop()))

let ok = true
let summary = "\n"
for (const [name, { code, passed, failed }] of results) {
  const counted = passed !== undefined && failed !== undefined
  if (code !== 0 || !counted || failed > 0 || passed === 0) ok = false
  if (!counted) summary += `${name}: exited with code ${code} before reporting a count\n`
  summary += `${name}: ${passed ?? 0} passed, ${failed ?? (code === 0 ? 0 : 1)} failed\n`
}
await flushed(summary)
process.exit(ok ? 0 : 1)
