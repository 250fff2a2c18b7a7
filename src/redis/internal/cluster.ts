/**
 * Effect's `Redis` service over an ioredis `Cluster`: how commands reach the nodes.
 *
 * - Shared commands go as ioredis routes them (by the slot of their keys, following `MOVED`),
 *   except `SCRIPT LOAD`, which has no key: Effect's script cache sends it once, and a script
 *   loaded on one node only would fail with `NOSCRIPT` wherever else its keys live. It goes to
 *   every master.
 * - A reserved connection (`Redis.reserve`: blocking reads, `WAIT`, transactions) keeps one
 *   connection per node it needs, opened on first use. A command with keys goes to the master of
 *   their slot; `WAIT`, `WAITAOF` and other commands without a key go to the node of the last
 *   command with keys (a `WAIT` counts the replicas of that node's writes). `MULTI` is held back
 *   and sent just before the first command with keys, on that command's node; `EXEC` and `DISCARD`
 *   follow it there. A transaction's commands must share one node (one slot, as every key of an
 *   annals store does).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as EffectRedis from "effect/persistence/Redis"
import { type Cluster, Command, Redis as IORedis, type RedisOptions } from "ioredis"
import { describeRedisFailure } from "./errors.ts"
import { failInFlightOnClose, sender } from "./connection.ts"

type Send = EffectRedis.Redis["Service"]["send"]

const refused = (message: string) => Effect.fail(new EffectRedis.RedisError({ cause: new Error(`RedisClient (cluster): ${message}`) }))

const isScriptLoad = (command: string, args: ReadonlyArray<string>) => command.toUpperCase() === "SCRIPT" && args[0]?.toUpperCase() === "LOAD"

/** The address (`host:port`) of every master the cluster client knows now. */
const masters = (cluster: Cluster): ReadonlyArray<string> => cluster.nodes("master").map((node) => `${node.options.host}:${node.options.port}`)

/** `SCRIPT LOAD` on every master (the sha is the same everywhere). */
const loadEverywhere = (cluster: Cluster, args: ReadonlyArray<string>): Effect.Effect<string, EffectRedis.RedisError> => {
  const nodes = cluster.nodes("master")
  if (nodes.length === 0) return refused("no master is known yet, so the script cannot be loaded")
  return Effect.map(Effect.forEach(nodes, (node) => sender(node)<string>("SCRIPT", ...args), { concurrency: "unbounded" }), (shas) => shas[0]!)
}

/** The shared `send` over `cluster`. */
export const clusterSend = (cluster: Cluster): Send => {
  const send = sender(cluster)
  return <A = unknown>(command: string, ...args: ReadonlyArray<string>) =>
    isScriptLoad(command, args) ? loadEverywhere(cluster, args) as Effect.Effect<A, EffectRedis.RedisError> : send<A>(command, ...args)
}

/**
 * Opens a connection of its own to the node at `address` (`host:port`); interrupted while it
 * connects, the connection is closed (else it would go on reconnecting after its owner is gone).
 */
const openNode = (address: string, options: RedisOptions): Effect.Effect<IORedis, EffectRedis.RedisError> =>
  Effect.suspend(() => {
    const split = address.lastIndexOf(":")
    const client = new IORedis({ ...options, host: address.slice(0, split), port: Number(address.slice(split + 1)), lazyConnect: true })
    client.on("error", () => {})
    failInFlightOnClose(client)
    return Effect.as(
      Effect.tryPromise({
        try: (signal) => {
          signal.addEventListener("abort", () => client.disconnect(), { once: true })
          return client.connect()
        },
        catch: (cause) => {
          client.disconnect()
          return new EffectRedis.RedisError({ cause: new Error(`RedisClient (cluster): cannot connect to node ${address}: ${describeRedisFailure(cause)}`) })
        }
      }),
      client
    )
  })

/** A reserved connection on `cluster` (see the module's doc); node connections with `options`. */
export const reservedOnCluster = (cluster: Cluster, options: RedisOptions): { readonly send: Send; readonly close: Effect.Effect<void> } => {
  const nodes = new Map<string, { readonly client: IORedis; readonly send: Send }>()
  /** The node of the last command with keys. */
  let last: string | undefined
  /** An open transaction: `node` undefined while its MULTI waits for the first command with keys. */
  let transaction: { node: string | undefined } | undefined
  let closed = false
  const on = (address: string): Effect.Effect<Send, EffectRedis.RedisError> => {
    const open = nodes.get(address)
    if (open !== undefined) return Effect.succeed(open.send)
    return Effect.flatMap(openNode(address, options), (client) => {
      // Closed while it connected: the connection is not kept.
      if (closed) {
        client.disconnect()
        return refused(`the reserved connection was closed while it connected to node ${address}`)
      }
      // Two commands may have opened it at once: the first one opened is kept.
      const first = nodes.get(address)
      if (first !== undefined) {
        client.disconnect()
        return Effect.succeed(first.send)
      }
      const node = { client, send: sender(client) }
      nodes.set(address, node)
      return Effect.succeed(node.send)
    })
  }

  const send = <A = unknown>(command: string, ...args: ReadonlyArray<string>): Effect.Effect<A, EffectRedis.RedisError> =>
    Effect.suspend((): Effect.Effect<A, EffectRedis.RedisError> => {
      if (isScriptLoad(command, args)) return loadEverywhere(cluster, args) as Effect.Effect<A, EffectRedis.RedisError>
      const slot = new Command(command, [...args]).getSlot()
      if (slot !== null) {
        const node = cluster.slots[slot]?.[0]
        if (node === undefined) return refused(`no node serves slot ${slot} (of ${command})`)
        const open = transaction
        if (open?.node !== undefined && open.node !== node) return refused(`${command} reaches node ${node}, but its transaction runs on ${open.node}`)
        return Effect.flatMap(on(node), (nodeSend) => {
          last = node
          if (open === undefined || open.node !== undefined) return nodeSend<A>(command, ...args)
          open.node = node
          return Effect.andThen(nodeSend("MULTI"), nodeSend<A>(command, ...args))
        })
      }
      const name = command.toUpperCase()
      if (name === "MULTI") {
        if (transaction !== undefined) return refused("MULTI calls can not be nested")
        transaction = { node: undefined }
        return Effect.succeed("OK" as A)
      }
      if (name === "EXEC" || name === "DISCARD") {
        const open = transaction
        transaction = undefined
        if (open === undefined) return refused(`${name} without MULTI`)
        if (open.node === undefined) return Effect.succeed((name === "EXEC" ? [] : "OK") as A)
        return Effect.flatMap(on(open.node), (nodeSend) => nodeSend<A>(name))
      }
      const node = last ?? masters(cluster)[0]
      if (node === undefined) return refused(`no master is known yet for ${command}`)
      return Effect.flatMap(on(node), (nodeSend) => nodeSend<A>(command, ...args))
    })

  const close = Effect.sync(() => {
    closed = true
    for (const { client } of nodes.values()) client.disconnect()
    nodes.clear()
  })
  return { send, close }
}
