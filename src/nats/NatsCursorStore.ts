/**
 * The CursorStore on NATS JetStream: the KV bucket `<prefix>_cursors` (created if missing), one key
 * per subscription, `token(name)` (long names hashed), whose value is the JSON of
 * `[name, seq, updatedAt, lease, token]` (`internal/cursorFields.ts`, with the name itself first).
 *
 * The rules (forward-only cursors, leases, fencing tokens) are those of every layer
 * (`CursorStore.make`). Each change of a name reads its value and revision, decides, and writes with
 * that revision expected — a create when the key was never written or was deleted, an update, or a
 * delete (a delete marker, which reads as no entry) — and when another writer came first it reads
 * again and decides again (a bounded number of times). So processes on many machines sharing the
 * server take and renew leases safely: no two owners hold a name at once, and a stale owner's
 * commit fails with `LeaseLost`. Expiries are the acquirer's clock plus the ttl, so clocks need
 * agree only within the ttl. Reads go to the stream leader, so a read after a write sees it. A
 * failed request is a `CursorStoreError` naming the operation, the name, the bucket and the
 * server's or client's words; a damaged value one naming its key and name.
 *
 * An existing bucket whose settings would drop entries (a max age, a size or message limit, a value
 * size limit below the largest entry), a weaker one than asked (memory for file, fewer replicas), a
 * sealed one or a mirror is refused at open, naming the setting: a dropped cursor would deliver its
 * records again, a dropped lease would let two instances run.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type CursorEntry, CursorStore, CursorStoreError, type EntryStore, make as makeStore } from "../CursorStore.ts"
import { layerFromConfig, merged } from "../internal/config.ts"
import { type CursorFields, cursorEntryOf, cursorFields, cursorFieldsProblem } from "../internal/cursorFields.ts"
import { MAX_NAME_LENGTH } from "../internal/validate.ts"
import { bucketProblem, droppingProblem, listKeys, type NatsStorageOptions, openKv, resolveStoreOptions } from "./internal/buckets.ts"
import { LOST, orLost, untilWon } from "./internal/compareAndSet.ts"
import { natsStoreOptions } from "./internal/config.ts"
import { describeNatsFailure } from "./internal/errors.ts"
import { storeNames, token } from "./internal/names.ts"
import * as Client from "./NatsClient.ts"

/**
 * Options of `make` / `layerClient`: the store `prefix`, and the `replicas` and `storage` of the
 * bucket when this store creates it.
 *
 * @since 0.1.0
 * @category models
 */
export interface NatsCursorStoreOptions extends NatsStorageOptions {
  /** Isolates this store's bucket (`<prefix>_cursors`); default `"annals"`. */
  readonly prefix?: string | undefined
}

/** Compare-and-set attempts of one update before it fails (each lost one means another update of the name landed). */
const ATTEMPTS = 100

/** Names whose entries `list` reads at once. */
const LIST_CONCURRENCY = 16

/**
 * The largest value plus a message's headers: a name and an owner of the longest, every character
 * escaped by JSON (`\uXXXX`), four numbers of 16 digits, and room for headers.
 */
const LARGEST_MESSAGE = 2 * 6 * MAX_NAME_LENGTH + 4 * 16 + 1024

/** A key's entry as read: its revision (0 when never written; a delete marker's when deleted), its name and entry when it has one. */
interface Found {
  readonly revision: number
  readonly name: string | undefined
  readonly entry: CursorEntry | undefined
}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

/** The value of `name`'s entry. */
const encodeEntry = (name: string, entry: CursorEntry): Uint8Array => encoder.encode(JSON.stringify([name, ...cursorFields(entry)]))

/**
 * The name and entry the value under `key` holds (for `name`, when known), or a sentence naming
 * what is wrong with it.
 */
const decodeEntry = (data: Uint8Array, key: string, name: string | undefined): readonly [string, CursorEntry] | string => {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(data))
  } catch {
    return "it is not a JSON array"
  }
  if (!Array.isArray(value)) return "it is not a JSON array"
  const [stored, ...fields] = value as ReadonlyArray<unknown>
  if (typeof stored !== "string") return "it does not start with the subscription's name"
  if (name !== undefined ? stored !== name : token(stored) !== key) return `it holds the entry of ${JSON.stringify(stored)}, whose key is ${token(stored)}`
  const problem = cursorFieldsProblem(fields)
  return problem ?? [stored, cursorEntryOf(fields as unknown as CursorFields)]
}

/**
 * Builds the CursorStore over the `NatsClient` in context, creating its bucket if missing and
 * checking it when it exists.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: NatsCursorStoreOptions = {}): Effect.Effect<CursorStore, CursorStoreError, Client.NatsClient> =>
  Effect.gen(function*() {
    const resolved = resolveStoreOptions(options)
    if (typeof resolved === "string") return yield* new CursorStoreError({ method: "open", message: `NatsCursorStore: ${resolved}` })
    const client = yield* Client.NatsClient
    const bucket = storeNames(resolved.prefix).cursorBucket
    const request = <A>(method: string, what: string, run: () => Promise<A>) =>
      Effect.tryPromise({
        try: run,
        catch: (cause) =>
          new CursorStoreError({
            method,
            message: `CursorStore.${method}: cannot ${what} in NATS bucket ${bucket} at ${client.servers}: ${describeNatsFailure(cause)}`,
            cause
          })
      })
    const { kv, config } = yield* request("open", "open the cursor bucket", () => openKv(client.jetstream, bucket, resolved.settings))
    const refused = bucketProblem(`cursor bucket ${bucket}`, config, [`$KV.${bucket}.>`], resolved.settings) ??
      droppingProblem(`cursor bucket ${bucket}`, config, "cursors and leases", LARGEST_MESSAGE)
    if (refused !== undefined) return yield* new CursorStoreError({ method: "open", message: `NatsCursorStore: ${refused}` })

    /** The entry under `key` (of `name`, when known: a listed key names it only in its value) with its revision. */
    const read = (method: string, key: string, name: string | undefined): Effect.Effect<Found, CursorStoreError> =>
      Effect.flatMap(
        request(method, `read the cursor of ${name === undefined ? `key ${key}` : JSON.stringify(name)}`, () => kv.get(key)),
        (found) => {
          const revision = found?.revision ?? 0
          if (found === null || found.operation !== "PUT") return Effect.succeed<Found>({ revision, name, entry: undefined })
          const decoded = decodeEntry(found.value, key, name)
          return typeof decoded === "string"
            ? Effect.fail(
              new CursorStoreError({
                method,
                message: `CursorStore.${method}: the value of key ${key} in bucket ${bucket}${
                  name === undefined ? "" : ` (the cursor of ${JSON.stringify(name)})`
                } is damaged: ${decoded}`
              })
            )
            : Effect.succeed<Found>({ revision, name: decoded[0], entry: decoded[1] })
        }
      )

    const entries: EntryStore = {
      read: (name) => Effect.map(Effect.suspend(() => read("get", token(name), name)), (found) => found.entry),
      update: (method, name, change) =>
        Effect.suspend(() => {
          const key = token(name)
          const what = `update the cursor of ${JSON.stringify(name)}`
          const attempt = Effect.gen(function*() {
            const { revision, entry } = yield* read(method, key, name)
            const { result, store } = change(entry)
            if (store === undefined || (store === null && entry === undefined)) return { result }
            const written = yield* orLost(
              store === null
                ? request(method, what, () => kv.delete(key, { previousSeq: revision }))
                : request(method, what, () => kv.put(key, encodeEntry(name, store), { previousSeq: revision }))
            )
            return written === LOST ? LOST : { result }
          })
          return Effect.map(
            untilWon(
              ATTEMPTS,
              attempt,
              Effect.fail(
                new CursorStoreError({
                  method,
                  message: `CursorStore.${method}: the cursor of ${JSON.stringify(name)} in bucket ${bucket} changed under ${ATTEMPTS} attempts in a row; nothing was stored`
                })
              )
            ),
            (won) => won.result
          )
        }),
      entries: Effect.gen(function*() {
        const keys = yield* request("list", "list the cursors", () => listKeys(kv, ">"))
        const all = yield* Effect.forEach(keys, (key) => read("list", key, undefined), { concurrency: LIST_CONCURRENCY })
        return all.flatMap(({ entry, name }) => (entry === undefined || name === undefined ? [] : [[name, entry] as const]))
      })
    }
    return makeStore(entries)
  })

/**
 * The CursorStore over the `NatsClient` in context (to share one connection with the other NATS layers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: NatsCursorStoreOptions = {}): Layer.Layer<CursorStore, CursorStoreError, Client.NatsClient> =>
  Layer.effect(CursorStore, make(options))

/**
 * The CursorStore with a connection of its own (see `NatsClient.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Client.NatsClientOptions & NatsCursorStoreOptions = {}
): Layer.Layer<CursorStore, CursorStoreError | Client.NatsClientError> => layerClient(options).pipe(Layer.provide(Client.layer(options)))

/**
 * The options of `layer` from `Config`: the client's (`NATS_URL`, see `NatsClient.config`),
 * `ANNALS_NATS_PREFIX` (default `annals`), `ANNALS_NATS_REPLICAS` (1 to 5, default 1) and
 * `ANNALS_NATS_STORAGE` (`file`, the default, or `memory`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Client.NatsClientOptions & NatsCursorStoreOptions> = merged(Client.config, natsStoreOptions)

/**
 * The CursorStore over a connection of its own, with the options from `config` (the environment
 * by default); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Client.NatsClientOptions & NatsCursorStoreOptions>
): Layer.Layer<CursorStore, CursorStoreError | Client.NatsClientError | Config.ConfigError> => layerFromConfig(config, layer, overrides)
