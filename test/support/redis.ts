/**
 * The Redis server the Redis suites run against (DESIGN §13), and a key prefix of its own for each
 * case.
 *
 * - `redisTarget()`: the server at `ANNALS_REDIS_URL` (default `redis://127.0.0.1:6379`) when it
 *   answers a PING within a few seconds; when it does not, a line says the suites were skipped and
 *   why — except under `CI=true`, where a test fails saying so — and it resolves to `undefined`
 *   (register the suites only for a server).
 * - `isolatedPrefix(target)`: a fresh prefix, whose keys are removed when the scope closes.
 * - `redisProxy(target)`: a TCP proxy in front of it, to make faults on purpose (`tcpProxy.ts`).
 * - `privateRedisServer(args)`: a `redis-server` process of the case's own (for server settings no
 *   case may set on the shared one), stopped when the scope closes.
 * - `privateRedisCluster(size)`: a Redis Cluster of `size` such servers (`redis-cli --cluster create`).
 */
import { Effect, type Scope } from "effect"
import * as childProcess from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { Redis as IORedis } from "ioredis"
import { RedisClient } from "../../src/redis/index.ts"
import { startTcpProxy, type TcpProxy } from "./tcpProxy.ts"

/** A server the suites run against. */
export interface RedisTarget {
  /** Names the server in test names, e.g. `redis 7.0.15`. */
  readonly name: string
  readonly url: string
}

/** The server's address for the suites. */
export const redisUrl = (): string => {
  const url = process.env.ANNALS_REDIS_URL
  if (url === undefined || url === "") return "redis://127.0.0.1:6379"
  return url.includes("://") ? url : `redis://${url}`
}

/** A short-lived connection to `url` that gives up quickly (for probes and cleanup). */
export const probeClient = (url: string): IORedis => {
  const client = new IORedis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3_000, retryStrategy: () => null })
  client.on("error", () => {})
  return client
}

/** The server's version, or a rejection if it does not answer. */
const serverVersion = async (url: string): Promise<string> => {
  const client = probeClient(url)
  try {
    await client.connect()
    const info = String(await client.call("INFO", "server"))
    return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? "unknown"
  } finally {
    client.disconnect()
  }
}

let cached: Promise<RedisTarget | undefined> | undefined

/** The run's Redis server, or `undefined` (after saying why) when none answers. */
export const redisTarget = (): Promise<RedisTarget | undefined> =>
  cached ??= (async () => {
    const url = redisUrl()
    try {
      return { name: `redis ${await serverVersion(url)}`, url }
    } catch (cause) {
      const why = `no Redis server answers at ${url} (${cause instanceof Error ? cause.message : String(cause)}); set ANNALS_REDIS_URL`
      if (process.env.CI === "true") {
        test("the Redis server answers (required under CI=true)", () => {
          throw new Error(`${why}; CI=true requires it`)
        })
      } else {
        process.stdout.write(`skipped: ${why}; the Redis suites of this file do not run\n`)
      }
      return undefined
    }
  })()

/** Removes every key under `prefix`'s hash tag (`RedisClient.removeStore`). */
export const removePrefix = (url: string, prefix: string): Promise<number> =>
  Effect.runPromise(Effect.provide(RedisClient.removeStore(prefix), RedisClient.layer({ url })))

/** A prefix of the case's own (`annals-t-<random>`), its keys removed when the scope closes. */
export const isolatedPrefix = (target: RedisTarget): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => `annals-t-${crypto.randomBytes(6).toString("hex")}`),
    (prefix) => Effect.promise(() => removePrefix(target.url, prefix).then(() => undefined))
  )

/** A proxy in front of `target`, closed when the scope closes. */
export const redisProxy = (target: RedisTarget): Effect.Effect<TcpProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => {
      const url = new URL(target.url)
      return startTcpProxy({ host: url.hostname, port: Number(url.port || 6379) })
    }),
    (p) => Effect.promise(() => p.close())
  )

/** A free TCP port on loopback (free when it was asked for). */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/**
 * A `redis-server` of the case's own on a free loopback port, keeping nothing on disk, with the
 * extra `args` (e.g. `["--maxmemory-policy", "allkeys-lru"]`); its url, once it answers a PING.
 * Killed when the scope closes. Fails the case when the machine has no `redis-server`.
 */
export const privateRedisServer = (args: ReadonlyArray<string> = []): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const port = await freePort()
      const server = childProcess.spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...args], {
        stdio: ["ignore", "ignore", "pipe"]
      })
      const failed = new Promise<never>((_, reject) => server.once("error", (cause) => reject(new Error(`cannot start redis-server: ${cause.message}`))))
      const url = `redis://127.0.0.1:${port}`
      const deadline = Date.now() + 10_000
      for (;;) {
        const answered = await Promise.race([failed, serverVersion(url).then(() => true, () => false)])
        if (answered) return { server, url }
        if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }),
    ({ server }) =>
      Effect.promise(() =>
        server.exitCode !== null ? Promise.resolve() : new Promise<void>((resolve) => {
          server.once("exit", () => resolve())
          server.kill("SIGKILL")
        })
      )
  ).pipe(Effect.map(({ url }) => url))

/** The output of a `redis-cli` run, or a rejection with its stderr. */
const redisCli = (args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) =>
    childProcess.execFile("redis-cli", [...args], (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`redis-cli ${args.join(" ")}: ${error.message} ${stderr}`))
    )
  )

/** A node of a cluster: its address. */
export interface ClusterNodeAddress {
  readonly host: string
  readonly port: number
}

/**
 * A Redis Cluster of `size` masters (no replicas), each a `privateRedisServer` with cluster mode on
 * and its `nodes.conf` in a temporary directory; their addresses, once every node reports
 * `cluster_state:ok`. Stopped and removed when the scope closes.
 */
export const privateRedisCluster = (size: number): Effect.Effect<ReadonlyArray<ClusterNodeAddress>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "annals-redis-cluster-"))),
      (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
    )
    const urls = yield* Effect.forEach(Array.from({ length: size }, (_, i) => i), (i) =>
      privateRedisServer(["--cluster-enabled", "yes", "--cluster-config-file", path.join(dir, `nodes-${i}.conf`), "--dir", dir]))
    const nodes = urls.map((url) => new URL(url)).map((url) => ({ host: url.hostname, port: Number(url.port) }))
    yield* Effect.promise(async () => {
      await redisCli(["--cluster", "create", ...nodes.map((node) => `${node.host}:${node.port}`), "--cluster-yes"])
      const deadline = Date.now() + 20_000
      for (;;) {
        const states = await Promise.all(nodes.map((node) => redisCli(["-h", node.host, "-p", String(node.port), "CLUSTER", "INFO"])))
        if (states.every((info) => info.includes("cluster_state:ok"))) return
        if (Date.now() > deadline) throw new Error(`the cluster on ports ${nodes.map((node) => node.port).join(", ")} is not ok within 20 s`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })
    return nodes
  })
