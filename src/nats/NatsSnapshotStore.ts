/**
 * The SnapshotStore on NATS JetStream: each stream's kept snapshots in one value of the KV bucket
 * `<prefix>_snapshots` (created if missing), under the key `<token(namespace)>.<token(id)>`; states
 * too large for one message in the object store `<prefix>_states`.
 *
 * - The value is the msgpack of the stream's names and its up to `keep` snapshots (version, seq,
 *   timestamp, schemaVersion, and the state inline or the name of its object). Long names are
 *   hashed in keys; the names in the value are checked on every read.
 * - `put` reads the value and its revision, merges (a snapshot at an existing version replaces it;
 *   the `keep` highest versions stay) and writes with the revision expected (compare-and-set; a
 *   create when there is none), reading and merging again when another writer came first; so puts
 *   of one stream from many processes keep exactly `keep`. A state goes to an object (a fresh name,
 *   written before the value) unless the value with it inline leaves room, under the server's
 *   `max_payload` (and the bucket's `max_msg_size`), for `keep` references. Objects a put drops are
 *   deleted after its write; a crash in between, a failed delete, or a write whose reply was lost
 *   leaves an orphan object (named `<key>/<version>/<uuid>`, so the stream is known), never a
 *   value that refers to a missing object.
 * - `get` is one KV read (plus the object's, when the selected state is in one); an object that a
 *   concurrent put dropped is met by reading the value again. `delete` removes the key (a delete
 *   marker), then its objects; it also removes a damaged value. `scan` lists the namespace's keys,
 *   orders the ids as JavaScript compares strings (UTF-16 code units), as every layer does, and
 *   reads the latest snapshot of each.
 * - A failed request is a `SnapshotStoreError` naming the operation, the stream, the bucket and the
 *   server's or client's words; a damaged value one naming its key.
 *
 * Snapshots can always be rebuilt from the journal, so limits on an existing snapshot bucket are
 * accepted: a max age or a size limit only drops snapshots (the next load replays more; an expired
 * value's objects stay as orphans). A bucket weaker than asked (memory for file, fewer replicas), a
 * sealed one or a mirror is refused, and so is a state object store with a max age, a per-subject
 * limit or an old-discarding size limit (they would drop parts of states that values still refer
 * to). Stores sharing a bucket should use the same `keep`: placement leaves room for that many
 * references.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { layerFromConfig, merged, snapshotKeep } from "../internal/config.ts"
import { resolveKeep, scanProblem, snapshotProblem, streamArgsProblem } from "../internal/snapshotChecks.ts"
import { failIf, formatStream } from "../internal/validate.ts"
import { type Snapshot, type SnapshotCriteria, SnapshotStore, SnapshotStoreError, type SnapshotStoreOptions } from "../SnapshotStore.ts"
import { bucketProblem, listKeys, type NatsStorageOptions, objectStoreProblem, openKv, openObjectStore, resolveStoreOptions } from "./internal/buckets.ts"
import { LOST, orLost, untilWon } from "./internal/compareAndSet.ts"
import { natsStoreOptions } from "./internal/config.ts"
import { describeNatsFailure } from "./internal/errors.ts"
import { fromToken, storeNames, token } from "./internal/names.ts"
import * as Values from "./internal/snapshotValues.ts"
import { deleteObject, readObject, writeObject } from "./internal/objects.ts"
import * as Client from "./NatsClient.ts"

/**
 * Options of `make` / `layerClient`: `keep` (see `SnapshotStoreOptions`), the store `prefix`, and
 * the `replicas` and `storage` of the bucket and object store when this store creates them.
 *
 * @since 0.1.0
 * @category models
 */
export interface NatsSnapshotStoreOptions extends SnapshotStoreOptions, NatsStorageOptions {
  /** Isolates this store's bucket (`<prefix>_snapshots`) and object store (`<prefix>_states`); default `"annals"`. */
  readonly prefix?: string | undefined
}

/** Reads and writes of one operation before it gives up (each lost one means another writer of the stream came first). */
const ATTEMPTS = 100

/** Streams whose latest snapshots `scan` reads at once. */
const SCAN_CONCURRENCY = 16

/** Bytes of a message's subject, headers and protocol line that `max_payload` also counts. */
const HEADER_ROOM = 1024

/** The server's message limit when it does not say (NATS' default). */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024

/** A key's value as read: its revision (0 when never written; a delete marker's when deleted) and its bytes, when it has a value. */
interface RawValue {
  readonly revision: number
  readonly data: Uint8Array | undefined
}

/**
 * Builds the SnapshotStore over the `NatsClient` in context, creating its bucket and object store
 * if missing and checking them when they exist.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: NatsSnapshotStoreOptions = {}): Effect.Effect<SnapshotStore, SnapshotStoreError, Client.NatsClient> =>
  Effect.gen(function*() {
    const error = (method: string) => (message: string) => new SnapshotStoreError({ method, message })
    const keep = resolveKeep(options)
    if (typeof keep === "string") return yield* Effect.fail(error("make")(keep))
    const resolved = resolveStoreOptions(options)
    if (typeof resolved === "string") return yield* Effect.fail(error("make")(`NatsSnapshotStore: ${resolved}`))
    const { prefix, settings } = resolved
    const client = yield* Client.NatsClient
    const { snapshotBucket: bucket, stateStore } = storeNames(prefix)
    const request = <A>(method: string, what: string, run: () => Promise<A>) =>
      Effect.tryPromise({
        try: run,
        catch: (cause) =>
          new SnapshotStoreError({
            method,
            message: `SnapshotStore.${method}: cannot ${what} (NATS bucket ${bucket} at ${client.servers}): ${describeNatsFailure(cause)}`,
            cause
          })
      })

    const { kv, config } = yield* request("make", "open the snapshot bucket", () => openKv(client.jetstream, bucket, settings))
    const { store: objects, config: objectConfig } = yield* request("make", `open the state object store ${stateStore}`, () =>
      openObjectStore(client.jetstream, stateStore, settings))
    const refused = bucketProblem(`snapshot bucket ${bucket}`, config, [`$KV.${bucket}.>`], settings) ??
      bucketProblem(`state object store ${stateStore}`, objectConfig, [`$O.${stateStore}.C.>`, `$O.${stateStore}.M.>`], settings) ??
      objectStoreProblem(`state object store ${stateStore}`, objectConfig)
    if (refused !== undefined) return yield* Effect.fail(error("make")(`NatsSnapshotStore: ${refused}`))
    /** The bytes a value may have: one message, under the server's limit and the bucket's. */
    const valueLimit = () =>
      Math.min(client.connection.info?.max_payload ?? DEFAULT_MAX_PAYLOAD, config.max_msg_size > 0 ? config.max_msg_size : Infinity) - HEADER_ROOM
    if (Values.referencesOnlyBytes(keep) > valueLimit()) {
      return yield* Effect.fail(error("make")(
        `NatsSnapshotStore: keep ${keep} does not fit: a stream's value holds up to keep snapshots in one message of at most ${valueLimit()} bytes (the server's max_payload and the bucket's max_msg_size); lower keep`
      ))
    }

    const where = (namespace: string, id: string) => `stream ${formatStream({ namespace, id })}`
    const damaged = (method: string, key: string, namespace: string, id: string, problem: string) =>
      error(method)(`SnapshotStore.${method}: the value of key ${key} in bucket ${bucket} (${where(namespace, id)}) is damaged: ${problem}`)

    const readRaw = (method: string, key: string, what: string): Effect.Effect<RawValue, SnapshotStoreError> =>
      Effect.map(request(method, `read ${what}`, () => kv.get(key)), (entry) => ({
        revision: entry?.revision ?? 0,
        data: entry !== null && entry.operation === "PUT" ? entry.value : undefined
      }))
    /** The stream's value and its revision (a damaged value fails naming its key). */
    const readValue = (method: string, namespace: string, id: string) => {
      const key = Values.snapshotKey(namespace, id)
      return Effect.flatMap(readRaw(method, key, `the snapshots of ${where(namespace, id)}`), ({ revision, data }) => {
        const value = data === undefined ? undefined : Values.decodeValue(data, namespace, id)
        return typeof value === "string" ? Effect.fail(damaged(method, key, namespace, id, value)) : Effect.succeed({ revision, value })
      })
    }
    /** Deletes objects no value refers to any more; a failure only leaves an orphan (logged). */
    const discard = (method: string, names: ReadonlyArray<string>) =>
      Effect.forEach(names, (name) =>
        request(method, `delete the state object ${name} of ${stateStore}`, () => deleteObject(objects, name)).pipe(
          Effect.catch((failure) => Effect.logWarning(`${failure.message}; it stays as an orphan`))
        ), { discard: true })

    /** The snapshot that `criteria` select, its state read from its object when it has one. */
    const find = (method: string, namespace: string, id: string, criteria: SnapshotCriteria | undefined) =>
      Effect.gen(function*() {
        const key = Values.snapshotKey(namespace, id)
        // The revision whose value referred to an object that was gone; met twice, the value is damaged.
        let missing: { readonly revision: number; readonly object: string } | undefined
        for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
          const { revision, value } = yield* readValue(method, namespace, id)
          if (missing?.revision === revision) {
            return yield* Effect.fail(damaged(method, key, namespace, id, `it refers to the object ${missing.object} of ${stateStore}, which is missing`))
          }
          const chosen = value === undefined ? undefined : Values.selectStored(value, criteria)
          if (value === undefined || chosen === undefined) return undefined
          if (typeof chosen.state !== "string") return Values.toSnapshot(value, chosen, chosen.state)
          const object = chosen.state
          const state = yield* request(method, `read the state object ${object} of ${stateStore} (${where(namespace, id)})`, () =>
            readObject(objects, object))
          if (state !== undefined) return Values.toSnapshot(value, chosen, state)
          missing = { revision, object }
        }
        return yield* Effect.fail(error(method)(`SnapshotStore.${method}: the snapshots of ${where(namespace, id)} (key ${key} in bucket ${bucket}) changed under ${ATTEMPTS} reads in a row`))
      })

    const changedUnder = (method: string, snapshotOf: string, key: string) =>
      error(method)(`SnapshotStore.${method}: the snapshots of ${snapshotOf} (key ${key} in bucket ${bucket}) changed under ${ATTEMPTS} attempts in a row; nothing was stored`)

    const put = (snapshot: Snapshot) =>
      Effect.suspend(() => {
        const { namespace, id, version } = snapshot
        const key = Values.snapshotKey(namespace, id)
        const inline = Values.stored(snapshot)
        // The object holding the new state once written, kept across lost races.
        let object: string | undefined
        const writeState = Effect.suspend(() => {
          const name = Values.objectName(key, version)
          return Effect.as(
            request("put", `write the state of ${where(namespace, id)} at version ${version} to the object ${name} of ${stateStore}`, () =>
              writeObject(objects, name, snapshot.state)),
            name
          )
        })
        const attempt = Effect.gen(function*() {
          const { revision, value } = yield* readValue("put", namespace, id)
          const current = value?.snapshots ?? []
          const merged = Values.merge(current, inline, keep)
          if (merged === undefined) return yield* Effect.as(discard("put", object === undefined ? [] : [object]), undefined)
          const encode = (state: Uint8Array | string) =>
            Values.encodeValue({ namespace, id, snapshots: merged.kept.map((s) => (s === inline ? { ...inline, state } : s)) })
          let data = encode(snapshot.state)
          if (object === undefined && !Values.fitsInline(data, key, keep, valueLimit())) object = yield* writeState
          if (object !== undefined) data = encode(object)
          const written = yield* orLost(request("put", `store the snapshots of ${where(namespace, id)} at version ${version}`, () =>
            kv.put(key, data, { previousSeq: revision })))
          if (written === LOST) return LOST
          yield* discard("put", Values.objectsOf(merged.dropped))
        })
        return untilWon(
          ATTEMPTS,
          attempt,
          Effect.suspend(() => Effect.andThen(discard("put", object === undefined ? [] : [object]), Effect.fail(changedUnder("put", where(namespace, id), key))))
        )
      })

    const remove = (namespace: string, id: string) => {
      const key = Values.snapshotKey(namespace, id)
      const attempt = Effect.gen(function*() {
        const raw = yield* readRaw("delete", key, `the snapshots of ${where(namespace, id)}`)
        if (raw.data === undefined) return undefined
        // A damaged value is removed too; the objects it may refer to are then unknown (orphans).
        const value = Values.decodeValue(raw.data, namespace, id)
        const removed = yield* orLost(request("delete", `delete the snapshots of ${where(namespace, id)}`, () =>
          kv.delete(key, { previousSeq: raw.revision })))
        if (removed === LOST) return LOST
        if (typeof value !== "string") yield* discard("delete", Values.objectsOf(value.snapshots))
      })
      return untilWon(ATTEMPTS, attempt, Effect.fail(changedUnder("delete", where(namespace, id), key)))
    }

    /** The ids of `namespace`'s streams, ordered by UTF-16 code units (a hashed key's id read from its value). */
    const idsOf = (namespace: string) =>
      Effect.gen(function*() {
        const keys = yield* request("scan", `list the snapshot keys of namespace ${JSON.stringify(namespace)}`, () =>
          listKeys(kv, Values.namespaceKeys(namespace)))
        const ids = yield* Effect.forEach(keys, (key) => {
          const idToken = key.slice(key.indexOf(".") + 1)
          const id = fromToken(idToken)
          if (id !== undefined && token(id) === idToken) return Effect.succeed([id])
          return Effect.flatMap(readRaw("scan", key, `the snapshots under key ${key}`), (raw) => {
            if (raw.data === undefined) return Effect.succeed([])
            const stored = Values.idOfValue(raw.data)
            return stored !== undefined
              ? Effect.succeed([stored])
              : Effect.fail(error("scan")(`SnapshotStore.scan: the value of key ${key} in bucket ${bucket} is damaged: it names no stream id`))
          })
        }, { concurrency: SCAN_CONCURRENCY })
        return Array.from(new Set(ids.flat())).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      })

    return SnapshotStore.of({
      get: (namespace, id, criteria) =>
        Effect.andThen(
          failIf(streamArgsProblem("get", namespace, id, criteria), error("get")),
          Effect.map(Effect.suspend(() => find("get", namespace, id, criteria)), Option.fromUndefinedOr)
        ),
      put: (snapshot) => Effect.andThen(failIf(snapshotProblem(snapshot), error("put")), put(snapshot)),
      delete: (namespace, id) =>
        Effect.andThen(failIf(streamArgsProblem("delete", namespace, id), error("delete")), Effect.suspend(() => remove(namespace, id))),
      scan: (namespace) =>
        Stream.unwrap(Effect.andThen(
          failIf(scanProblem(namespace), error("scan")),
          Effect.map(Effect.suspend(() => idsOf(namespace)), (ids) =>
            Stream.fromIterable(ids).pipe(
              Stream.mapEffect((id) => find("scan", namespace, id, undefined), { concurrency: SCAN_CONCURRENCY }),
              Stream.filter((snapshot): snapshot is Snapshot => snapshot !== undefined)
            ))
        ))
    })
  })

/**
 * The SnapshotStore over the `NatsClient` in context (to share one connection with the other NATS layers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: NatsSnapshotStoreOptions = {}): Layer.Layer<SnapshotStore, SnapshotStoreError, Client.NatsClient> =>
  Layer.effect(SnapshotStore, make(options))

/**
 * The SnapshotStore with a connection of its own (see `NatsClient.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Client.NatsClientOptions & NatsSnapshotStoreOptions = {}
): Layer.Layer<SnapshotStore, SnapshotStoreError | Client.NatsClientError> => layerClient(options).pipe(Layer.provide(Client.layer(options)))

/**
 * The options of `layer` from `Config`: the client's (`NATS_URL`, see `NatsClient.config`),
 * `ANNALS_NATS_PREFIX` (default `annals`), `ANNALS_NATS_REPLICAS` (1 to 5, default 1) and
 * `ANNALS_NATS_STORAGE` (`file`, the default, or `memory`), and `ANNALS_SNAPSHOT_KEEP` (≥ 1, default 1).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Client.NatsClientOptions & NatsSnapshotStoreOptions> = merged(
  Client.config,
  merged(natsStoreOptions, Config.all({ keep: snapshotKeep }))
)

/**
 * The SnapshotStore over a connection of its own, with the options from `config` (the environment
 * by default); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Client.NatsClientOptions & NatsSnapshotStoreOptions>
): Layer.Layer<SnapshotStore, SnapshotStoreError | Client.NatsClientError | Config.ConfigError> => layerFromConfig(config, layer, overrides)
