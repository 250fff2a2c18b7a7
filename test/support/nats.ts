/**
 * The NATS server the NATS suites run against (DESIGN §13), and a store prefix of its own for each
 * case.
 *
 * - `natsTarget()`: the server at `ANNALS_NATS_URL` (default `nats://127.0.0.1:4222`) when it
 *   answers with JetStream within a few seconds; when it does not, a line says the suites were
 *   skipped and why — except under `CI=true`, where a test fails saying so — and it resolves to
 *   `undefined` (register the suites only for a server).
 * - `isolatedNatsPrefix(target)`: a fresh prefix, whose streams and buckets are removed when the
 *   scope closes (`NatsClient.removeStore`).
 * - `privateNatsServer()`: a `nats-server -js` of the case's own (file storage in a temporary
 *   directory), to stop and start again on the same port and store: a real server restart.
 */
import { Effect, type Scope } from "effect"
import * as childProcess from "node:child_process"
import * as crypto from "node:crypto"
import process from "node:process"
import { test } from "node:test"
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { NatsClient } from "../../src/nats/index.ts"
import { freePort } from "./embeddedPostgres.ts"
import { tempDirectory } from "./tempDirectory.ts"

/** A server the suites run against. */
export interface NatsTarget {
  /** Names the server in test names, e.g. `nats 2.9.10`. */
  readonly name: string
  readonly url: string
}

/** The server's address for the suites. */
export const natsUrl = (): string => {
  const url = process.env.ANNALS_NATS_URL
  if (url === undefined || url === "") return "nats://127.0.0.1:4222"
  return url.includes("://") ? url : `nats://${url}`
}

/** The server's version, or a rejection if it does not answer or has no JetStream. */
const serverVersion = async (url: string): Promise<string> => {
  const connection = await connect({ servers: url, timeout: 3_000, reconnect: false })
  try {
    await jetstreamManager(connection)
    return connection.info?.version ?? "unknown"
  } finally {
    await connection.close()
  }
}

let cached: Promise<NatsTarget | undefined> | undefined

/** The run's NATS server, or `undefined` (after saying why) when none answers. */
export const natsTarget = (): Promise<NatsTarget | undefined> =>
  cached ??= (async () => {
    const url = natsUrl()
    try {
      return { name: `nats ${await serverVersion(url)}`, url }
    } catch (cause) {
      const why = `no NATS server with JetStream answers at ${url} (${cause instanceof Error ? cause.message : String(cause)}); set ANNALS_NATS_URL`
      if (process.env.CI === "true") {
        test("the NATS server answers (required under CI=true)", () => {
          throw new Error(`${why}; CI=true requires it`)
        })
      } else {
        process.stdout.write(`skipped: ${why}; the NATS suites of this file do not run\n`)
      }
      return undefined
    }
  })()

/** Removes every stream of the store under `prefix` (`NatsClient.removeStore`). */
export const removeNatsPrefix = (url: string, prefix: string): Promise<number> =>
  Effect.runPromise(Effect.scoped(Effect.provide(NatsClient.removeStore(prefix), NatsClient.layer({ servers: url }))))

/** A prefix of the case's own (`t<random>`), its streams removed when the scope closes. */
export const isolatedNatsPrefix = (target: NatsTarget): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => `t${crypto.randomBytes(6).toString("hex")}`),
    (prefix) => Effect.promise(() => removeNatsPrefix(target.url, prefix).then(() => undefined))
  )

/** A `nats-server` of the case's own (see `privateNatsServer`). */
export interface PrivateNatsServer {
  /** `nats://127.0.0.1:<port>`, the same after every restart. */
  readonly url: string
  /** Its JetStream store directory, kept across restarts. */
  readonly storeDir: string
  /** Sends `signal` (SIGTERM: a clean shutdown; SIGKILL: none) and waits until the process is gone. */
  readonly stop: (signal: "SIGTERM" | "SIGKILL") => Promise<void>
  /** Starts it again on the same port and store; resolves once it answers with JetStream. */
  readonly start: () => Promise<void>
}

/** Spawns `nats-server -js` on `port` with `storeDir`; resolves once it answers with JetStream (within 20 s). */
const spawnNatsServer = async (port: number, storeDir: string): Promise<childProcess.ChildProcess> => {
  const server = childProcess.spawn("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir], { stdio: ["ignore", "ignore", "pipe"] })
  let output = ""
  server.stderr!.setEncoding("utf8")
  server.stderr!.on("data", (chunk: string) => void (output = (output + chunk).slice(-4_000)))
  const ended = new Promise<never>((_, reject) => {
    server.once("error", (cause) => reject(new Error(`cannot start nats-server: ${cause.message}`)))
    server.once("exit", (code, signal) => reject(new Error(`nats-server on port ${port} exited (${signal ?? `code ${code}`}): ${output}`)))
  })
  ended.catch(() => undefined)
  const url = `nats://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  for (;;) {
    const answered = await Promise.race([ended, serverVersion(url).then(() => true, () => false)])
    if (answered) return server
    if (Date.now() > deadline) {
      server.kill("SIGKILL")
      throw new Error(`nats-server on port ${port} did not answer with JetStream within 20 s: ${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Sends `signal` to `server` unless it has ended, and waits until it has. */
const stopProcess = (server: childProcess.ChildProcess, signal: NodeJS.Signals): Promise<void> =>
  server.exitCode !== null || server.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => {
      server.once("exit", () => resolve())
      server.kill(signal)
    })

/**
 * A `nats-server -js` on a free loopback port with its store in a fresh temporary directory, once
 * it answers; `stop` and `start` restart it on the same port and store. Killed (and its store
 * removed) when the scope closes. Fails the case when the machine has no `nats-server`.
 */
export const privateNatsServer = (): Effect.Effect<PrivateNatsServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const storeDir = yield* tempDirectory("nats")
    const port = yield* Effect.promise(() => freePort())
    let running: childProcess.ChildProcess | undefined
    const start = async () => {
      if (running !== undefined) throw new Error("the private nats-server is already running")
      running = await spawnNatsServer(port, storeDir)
    }
    const stop = async (signal: "SIGTERM" | "SIGKILL") => {
      const server = running
      running = undefined
      if (server !== undefined) await stopProcess(server, signal)
    }
    yield* Effect.acquireRelease(Effect.promise(start), () => Effect.promise(() => stop("SIGKILL")))
    return { url: `nats://127.0.0.1:${port}`, storeDir, stop, start }
  })
