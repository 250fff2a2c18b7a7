#!/usr/bin/env node
// Applies the fix of postgres.js's open pull request #1209 (issues #1066, #1154, #1208) to the copy
// installed in this repository's node_modules, for the tests and benchmarks here. postgres 3.4.9 (the
// newest release) defers small writes with setImmediate; when the connection closes first, the deferred
// write dereferences a null socket and throws an uncaughtException that no caller can catch — a lost
// connection then kills the process instead of failing the query. The fix: a write with no socket
// fails the waiting queries with CONNECTION_CLOSED, and teardown forgets the pending write.
// Idempotent; run by `npm install` / `npm ci` here ("prepare"), never in a user's installation —
// README, "PostgreSQL", says what users of the published driver need to know.
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const MARK = "/* annals: patched (postgres.js #1209) */"
const replacements = [
  [
    "  function nextWrite(fn) {\n",
    `  function nextWrite(fn) {\n    ${MARK}\n    if (!socket) {\n      chunk = nextWriteTimer = null\n      error(Errors.connection('CONNECTION_CLOSED', options))\n      return false\n    }\n`
  ],
  ["    clearImmediate(nextWriteTimer)\n    if (socket) {\n", "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    if (socket) {\n"],
  ["    clearImmediate(nextWriteTimer)\n    socket.removeListener('data', data)\n", "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    socket.removeListener('data', data)\n"]
]

let root
try {
  root = join("node_modules", "postgres")
  readFileSync(join(root, "package.json"))
} catch {
  process.exit(0) // not installed (e.g. a production install without it): nothing to patch
}
for (const dir of ["src", join("cjs", "src"), join("cf", "src")]) {
  const file = join(root, dir, "connection.js")
  let text = readFileSync(file, "utf8")
  if (text.includes(MARK)) continue
  for (const [from, to] of replacements) {
    if (!text.includes(from)) throw new Error(`patch-postgres: ${file} does not contain the code the patch expects (a new postgres.js version?): ${JSON.stringify(from.slice(0, 40))}`)
    text = text.replace(from, to)
  }
  writeFileSync(file, text)
}
