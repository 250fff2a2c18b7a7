/**
 * A connection to NATS with JetStream, through the official `@nats-io` v3 packages
 * (`transport-node`, which runs unchanged on Bun, Deno and Node, and `jetstream`): what the NATS
 * layers need in context. `NatsClient.layer({ servers })` connects (and at the end drains and
 * closes the connection); `NatsClient.layer({ connection })` uses a connection the application
 * already has (and leaves it open).
 *
 * The connection reconnects by itself (`reconnect: true`, every 250 ms, for ever): while it is
 * down, requests fail with typed errors in the layers and succeed again once it is back.
 *
 * @since 0.1.0
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream"
import { connect, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { TaggedErrorClass } from "../internal/errors.ts"
import { isStreamNotFound } from "./internal/errors.ts"
import { prefixProblem, storeNames } from "./internal/names.ts"

/**
 * The fields of a `NatsClientError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface NatsClientErrorFields {
  readonly method: string
  readonly message: string
  readonly cause?: unknown
}

const NatsClientErrorBase: TaggedErrorClass<"NatsClientError", NatsClientErrorFields> = Data.TaggedError("NatsClientError")

/**
 * The server could not be reached, or has no JetStream, when the client was opened (the message
 * names the servers, without credentials).
 *
 * @since 0.1.0
 * @category errors
 */
export class NatsClientError extends NatsClientErrorBase {}

/**
 * A connection with its JetStream client and manager.
 *
 * @since 0.1.0
 * @category models
 */
export interface NatsClient {
  readonly connection: NatsConnection
  readonly jetstream: JetStreamClient
  readonly manager: JetStreamManager
  /** The servers, for messages (credentials removed). */
  readonly servers: string
}

/**
 * The NatsClient service key.
 *
 * @since 0.1.0
 * @category services
 */
export const NatsClient: Context.Service<NatsClient, NatsClient> = Context.Service<NatsClient>("annals/nats/NatsClient")

/**
 * Options of `make` and `layer`: the `servers` to connect to (default `nats://127.0.0.1:4222`) with
 * connection `options` over this module's defaults, or an open `connection`.
 *
 * @since 0.1.0
 * @category models
 */
export interface NatsClientOptions {
  /** `nats://[user:password@]host:port`, or several (a cluster); default `nats://127.0.0.1:4222`. */
  readonly servers?: string | ReadonlyArray<string> | undefined
  /** `@nats-io/transport-node` connection options (credentials, TLS, timeouts …). */
  readonly options?: Partial<NodeConnectionOptions> | undefined
  /** An open connection to use instead (left open when the scope closes). */
  readonly connection?: NatsConnection | undefined
  /**
   * How long a JetStream request (a publish's ack, a KV or stream operation) waits for its reply
   * before it fails (default 5,000 ms); while the server is unreachable, operations fail after it.
   */
  readonly requestTimeoutMs?: number | undefined
}

/** The default address. */
export const DEFAULT_SERVERS = "nats://127.0.0.1:4222"

/** `servers` without passwords or tokens, for messages. */
export const redactServers = (servers: string | ReadonlyArray<string>): string =>
  (typeof servers === "string" ? [servers] : servers).map((s) => s.replace(/\/\/[^@/]*@/, "//***@")).join(", ")

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** The JetStream client and manager of `connection`, or a failure saying JetStream is not there. */
const withJetStream = (connection: NatsConnection, servers: string, timeout: number): Effect.Effect<NatsClient, NatsClientError> =>
  Effect.tryPromise({
    try: async () => ({ connection, jetstream: jetstream(connection, { timeout }), manager: await jetstreamManager(connection, { timeout }), servers }),
    catch: (cause) =>
      new NatsClientError({ method: "make", message: `NatsClient: JetStream is not available at ${servers} (run nats-server -js): ${describe(cause)}`, cause })
  })

/**
 * Connects (the connection drained and closed when the scope closes) and checks that the server
 * has JetStream.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: NatsClientOptions = {}): Effect.Effect<NatsClient, NatsClientError, Scope.Scope> =>
  Effect.gen(function*() {
    const timeout = options.requestTimeoutMs ?? 5_000
    if (!Number.isInteger(timeout) || timeout < 1) {
      return yield* new NatsClientError({ method: "make", message: `NatsClient: requestTimeoutMs must be a positive integer, got ${JSON.stringify(timeout)}` })
    }
    if (options.connection !== undefined) return yield* withJetStream(options.connection, redactServers(options.connection.getServer()), timeout)
    const servers = options.servers ?? DEFAULT_SERVERS
    const shown = redactServers(servers)
    const connection = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          connect({
            servers: typeof servers === "string" ? servers : [...servers],
            reconnect: true,
            maxReconnectAttempts: -1,
            reconnectTimeWait: 250,
            timeout: 5_000,
            ...options.options
          }),
        catch: (cause) => new NatsClientError({ method: "make", message: `NatsClient: cannot connect to ${shown}: ${describe(cause)}`, cause })
      }),
      (connection) => Effect.promise(() => connection.drain().catch(() => connection.close()).catch(() => undefined))
    )
    return yield* withJetStream(connection, shown, timeout)
  })

/**
 * The client as a layer (see `make`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: NatsClientOptions = {}): Layer.Layer<NatsClient, NatsClientError> => Layer.effect(NatsClient, make(options))

/**
 * The client's options from `Config`: `NATS_URL` (one server, or several separated by commas;
 * default `nats://127.0.0.1:4222`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<NatsClientOptions> = Config.option(Config.Redacted("NATS_URL")).pipe(
  Config.map((url): NatsClientOptions => Option.isSome(url) ? { servers: Redacted.value(url.value).split(",").map((s) => s.trim()) } : {})
)

/**
 * `layer` with its options from `config` (the environment by default).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<NatsClient, NatsClientError | Config.ConfigError> = Layer.effect(NatsClient, Effect.flatMap(config, make))

/**
 * Removes every JetStream stream of the annals store under `prefix` (the journal and its payload
 * object store, the snapshot and cursor buckets, the state object store, the artifact object store);
 * returns how many it removed. For tests and for retiring a store.
 *
 * @since 0.1.0
 * @category utils
 */
export const removeStore = (prefix: string): Effect.Effect<number, NatsClientError, NatsClient> =>
  Effect.gen(function*() {
    const problem = prefixProblem(prefix)
    if (problem !== undefined) return yield* new NatsClientError({ method: "removeStore", message: `NatsClient.removeStore: ${problem}` })
    const { manager, servers } = yield* NatsClient
    const names = storeNames(prefix)
    const streams = [
      names.journalStream,
      `OBJ_${names.payloadStore}`,
      `KV_${names.snapshotBucket}`,
      `KV_${names.cursorBucket}`,
      `OBJ_${names.stateStore}`,
      `OBJ_${names.artifactStore}`
    ]
    let removed = 0
    for (const stream of streams) {
      const deleted = yield* Effect.tryPromise({
        try: () => manager.streams.delete(stream).catch((cause) => (isStreamNotFound(cause) ? false : Promise.reject(cause))),
        catch: (cause) => new NatsClientError({ method: "removeStore", message: `NatsClient.removeStore: cannot delete the stream ${stream} at ${servers}: ${describe(cause)}`, cause })
      })
      if (deleted) removed++
    }
    return removed
  })
