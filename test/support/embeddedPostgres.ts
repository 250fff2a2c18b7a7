/** The embedded PostgreSQL server of the examples, which the tests start too. */
export { type EmbeddedServer, freePort, startEmbeddedServer } from "../../examples/support/embeddedPostgres.ts"
