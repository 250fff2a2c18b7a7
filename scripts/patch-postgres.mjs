#!/usr/bin/env node
// Fixes two bugs of postgres.js 3.4.9 (the newest release; master is unchanged) in the copy installed
// in this repository's node_modules, for the tests and benchmarks here. Both bite when the server ends
// a connection (pg_terminate_backend, a restart, a reset) while a query is on it.
//
// 1. The fix of the open pull request #1209 (issues #1066, #1154, #1208): small writes are deferred
//    with setImmediate; when the connection closes first, the deferred write dereferences a null socket
//    and throws an uncaughtException that no caller can catch — a lost connection then kills the
//    process instead of failing the query. The fix: a write with no socket fails the waiting queries
//    with CONNECTION_CLOSED, and teardown forgets the pending write.
// 2. A closed connection keeps its dead session's state (issues #1223 and #1142; on pull request
//    #1215, the third case of its table and the reset inside `begin()` still open there): `closed()`
//    leaves the active query and the server's ErrorResponse (a FATAL such as 57P01 comes with no
//    ReadyForQuery) in place, and after an 'error' event (ECONNRESET, EPIPE: then `hadError`) it also
//    leaves the queries written behind it in `sent`. When the connection object reconnects, its first
//    ReadyForQuery replays that old error onto the new session's first query (an append fails on a
//    fresh connection with the dead backend's 57P01) and onto the query it still holds — the
//    array-type query of `fetch_types` when the kill landed during start-up, which `fetchArrayTypes`
//    never catches: an unhandled rejection, fatal on Node and Deno. A query left in `sent` (the
//    ROLLBACK that `sql.begin` sends after a failed statement) then becomes the active one although it
//    was never written on the new socket: the connection waits for its reply forever, with every later
//    query queued behind it, and `sql.end()` cannot finish. The fix: `closed()` fails what the dead
//    session still owes (its query, its stream, `sent`) with CONNECTION_CLOSED, whatever the close's
//    cause, and clears the session's state before it reconnects or reports the close; the start-up
//    queries of the driver's own (array types, and the session state `target_session_attrs` asks for)
//    have their failure caught: it reaches the query that opened the connection through `errored`, or
//    that query is retried on the next connection.
// Idempotent (each fix once, by its mark); run by `npm install` / `npm ci` here ("prepare"), never in
// a user's installation — README, "PostgreSQL", says what users of the published driver need to know.
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const fixes = [
  {
    mark: "/* annals: patched (postgres.js #1209) */",
    replacements: (mark) => [
      [
        "  function nextWrite(fn) {\n",
        `  function nextWrite(fn) {\n    ${mark}\n    if (!socket) {\n      chunk = nextWriteTimer = null\n      error(Errors.connection('CONNECTION_CLOSED', options))\n      return false\n    }\n`
      ],
      ["    clearImmediate(nextWriteTimer)\n    if (socket) {\n", "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    if (socket) {\n"],
      ["    clearImmediate(nextWriteTimer)\n    socket.removeListener('data', data)\n", "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    socket.removeListener('data', data)\n"]
    ]
  },
  {
    mark: "/* annals: patched (postgres.js #1223) */",
    replacements: (mark) => [
      [
        "    socket.removeAllListeners()\n    socket = null\n\n    if (initial)\n      return reconnect()\n\n    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))\n",
        `    socket.removeAllListeners()\n    socket = null\n\n    ${mark}\n    const lost = Errors.connection('CONNECTION_CLOSED', options)\n    stream && (stream.destroy(lost), stream = null)\n    query && queryError(query, lost)\n    while (sent.length)\n      queryError(sent.shift(), lost)\n    query = results = errorResponse = null\n    result = new Result()\n    rows = 0\n\n    if (initial)\n      return reconnect()\n\n`
      ],
      ["        return fetchArrayTypes()\n", "        return fetchArrayTypes().catch(noop)\n"],
      ["    query.execute()\n", "    query.execute().catch(noop)\n"]
    ]
  }
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
  for (const { mark, replacements } of fixes) {
    if (text.includes(mark)) continue
    for (const [from, to] of replacements(mark)) {
      if (!text.includes(from)) throw new Error(`patch-postgres: ${file} does not contain the code the patch expects (a new postgres.js version?): ${JSON.stringify(from.slice(0, 40))}`)
      text = text.replace(from, to)
    }
  }
  writeFileSync(file, text)
}
