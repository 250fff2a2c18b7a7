/**
 * What the NATS SnapshotStore and CursorStore tests share besides the target (`nats.ts`):
 *
 * - `withJetStream(target, body)`: `body` over a connection of its own to the server (a raw
 *   JetStream client and manager, to look at or damage what a store wrote, or to prepare buckets).
 * - `prepareBucket(target, bucket, options, changes)`: a KV bucket made before a store opens it,
 *   with `@nats-io/kv` options and then any stream settings changed (limits, sealed …).
 * - `natsProxy(target)`: a TCP proxy in front of the server (`tcpProxy.ts`), to make faults on
 *   purpose; closed when the scope closes.
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager, type StreamConfig } from "@nats-io/jetstream"
import { type KvOptions, Kvm } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import { Effect, type Scope } from "effect"
import type { NatsTarget } from "./nats.ts"
import { startTcpProxy, type TcpProxy } from "./tcpProxy.ts"

/** A raw JetStream client and manager on a connection of their own, and the server's message limit. */
export interface JetStreamAccess {
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
  /** The server's `max_payload` (bytes of one message). */
  readonly maxPayload: number
}

/** Runs `body` over a connection of its own to `target`'s server, closed afterwards. */
export const withJetStream = <A>(target: NatsTarget, body: (access: JetStreamAccess) => Promise<A>): Effect.Effect<A> =>
  Effect.promise(async () => {
    const connection = await connect({ servers: target.url, timeout: 3_000, reconnect: false })
    try {
      return await body({ js: jetstream(connection), jsm: await jetstreamManager(connection), maxPayload: connection.info!.max_payload })
    } finally {
      await connection.close()
    }
  })

/** Creates the KV bucket `bucket` with `options`, then changes its stream's settings by `changes`. */
export const prepareBucket = (
  target: NatsTarget,
  bucket: string,
  options: Partial<KvOptions> = {},
  changes: Partial<StreamConfig> = {}
): Effect.Effect<void> =>
  withJetStream(target, async ({ js, jsm }) => {
    await new Kvm(js).create(bucket, options)
    if (Object.keys(changes).length === 0) return
    const { config } = await jsm.streams.info(`KV_${bucket}`)
    await jsm.streams.update(config.name, { ...config, ...changes })
  })

/** A proxy in front of `target`, closed when the scope closes. */
export const natsProxy = (target: NatsTarget): Effect.Effect<TcpProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => {
      const url = new URL(target.url)
      return startTcpProxy({ host: url.hostname, port: Number(url.port || 4222) }, "nats")
    }),
    (proxy) => Effect.promise(() => proxy.close())
  )
