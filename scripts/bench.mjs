#!/usr/bin/env node
// Runs a benchmark suite under Bun, Deno and Node (building for Node first with tsconfig.node.json),
// one after another, and prints every JSON line they report on stdout. Each group of figures runs in a
// fresh process, so that one group's JIT and heap state does not skew the next. Exits non-zero if a
// run fails; a missed target is reported in its line ("met": false), not by the exit code.
// ANNALS_RUNTIMES=bun,node limits the runtimes.
//
// Suites: `runtime` (bench/runtime.ts, the default: groups fold, latency, execute), `file`
// (bench/file.ts: groups durable, concurrent, os, large — `large` builds one 1,000,000-record journal
// and runs replay, open and read over it in one process —, streams and truncate), `subscription`
// (bench/subscription.ts: groups catchup, live), `projection` (bench/projection.ts: groups catchup,
// import) and `postgres` (bench/postgres.ts: groups append1, append100, concurrent8, load, replay,
// follow — each process starts its own embedded PostgreSQL unless ANNALS_PG_URL names a server)
// and `s3` (bench/s3.ts: groups append, restore, compression — each process starts its own
// radosgw unless ANNALS_S3_ENDPOINT names a server) and `redis` (bench/redis.ts: groups append1,
// concurrent8, read, replay — against the server at ANNALS_REDIS_URL, default 127.0.0.1:6379) and
// `nats` (bench/nats.ts: groups append1, concurrent8, read, replay, follow — against the server at
// ANNALS_NATS_URL, default nats://127.0.0.1:4222) and `observability` (bench/observability.ts: groups
// os, durable — the file journal's appends with and without the instrumentation wrapper) and `decode`
// (bench/decode.ts: groups load, breakdown, cold, catchup, long — loads, catch-ups, first uses in fresh
// processes and a long stream's load next to msgpackr `unpack` and a plain reducer).
// The first argument may name the suite; the other arguments limit its groups:
//
//   npm run bench                       # runtime suite, all groups
//   npm run bench -- execute            # runtime suite, one group
//   npm run bench -- file               # file suite, all groups
//   npm run bench -- file durable os    # file suite, some groups
//   npm run bench -- subscription       # subscription suite, all groups
//   npm run bench -- projection import  # projection suite, one group
//   npm run bench -- postgres append1   # postgres suite, one group
//   npm run bench -- s3 restore          # s3 suite, one group
//   npm run bench -- redis replay       # redis suite, one group
//   npm run bench -- nats follow        # nats suite, one group
//   npm run bench -- observability os   # observability suite, one group
//   npm run bench -- decode load        # decode suite, one group
import { spawn } from "node:child_process"
import { join } from "node:path"

const bin = (name) => join("node_modules", ".bin", name)

const run = (command, args, { echo }) =>
  new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, NO_COLOR: "1" } })
    let buffered = ""
    child.stdout.on("data", (chunk) => {
      buffered += chunk
      const lines = buffered.split("\n")
      buffered = lines.pop()
      for (const line of lines) echo(line)
    })
    child.on("close", (code) => {
      if (buffered !== "") echo(buffered)
      resolve(code ?? 1)
    })
  })

const printJson = (line) => {
  if (line.startsWith("{")) console.log(line)
  else if (line.trim() !== "") console.error(line)
}

const suites = {
  runtime: { script: "runtime", groups: ["fold", "latency", "execute"] },
  file: { script: "file", groups: ["durable", "concurrent", "os", "large", "streams", "truncate"] },
  subscription: { script: "subscription", groups: ["catchup", "live"] },
  projection: { script: "projection", groups: ["catchup", "import"] },
  postgres: { script: "postgres", groups: ["append1", "append100", "concurrent8", "load", "replay", "follow"] },
  s3: { script: "s3", groups: ["append", "restore", "compression"] },
  redis: { script: "redis", groups: ["append1", "concurrent8", "read", "replay"] },
  nats: { script: "nats", groups: ["append1", "concurrent8", "read", "replay", "follow"] },
  observability: { script: "observability", groups: ["os", "durable"] },
  decode: { script: "decode", groups: ["load", "breakdown", "cold", "catchup", "long"] }
}
const argv = process.argv.slice(2)
const suiteName = argv.length > 0 && Object.hasOwn(suites, argv[0]) ? argv.shift() : "runtime"
const suite = suites[suiteName]
const groups = argv.length > 0 ? argv : suite.groups

const eachGroup = async (command, args) => {
  let failed = 0
  for (const group of groups) {
    const code = await run(command, [...args, group], { echo: printJson })
    if (code !== 0) failed = code
  }
  return failed
}

const runtimes = {
  bun: () => eachGroup(bin("bun"), [`bench/${suite.script}.ts`]),
  deno: () => eachGroup(bin("deno"), ["run", "-A", `bench/${suite.script}.ts`]),
  node: async () => {
    const built = await run(bin("tsc"), ["-p", "tsconfig.node.json"], { echo: (line) => console.error(line) })
    if (built !== 0) return built
    return eachGroup(process.execPath, [join(".build", "node", "bench", `${suite.script}.js`)])
  }
}

const selected = (process.env.ANNALS_RUNTIMES ?? "bun,deno,node").split(",").map((s) => s.trim()).filter(Boolean)
let ok = true
for (const name of selected) {
  const runner = runtimes[name]
  if (runner === undefined) {
    console.error(`unknown runtime ${name} (expected bun, deno or node)`)
    process.exit(2)
  }
  console.error(`=== ${name}`)
  const code = await runner()
  if (code !== 0) {
    console.error(`${name}: the benchmark exited with code ${code}`)
    ok = false
  }
}
process.exit(ok ? 0 : 1)
