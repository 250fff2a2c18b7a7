/**
 * The KV buckets and the object store of the NATS SnapshotStore and CursorStore: the storage
 * options they share, opening (creating when missing) through `@nats-io/kv` and `@nats-io/obj`, and
 * the checks of an existing bucket's settings.
 *
 * A bucket the stores create has the asked `replicas` and `storage` (a KV bucket keeps one value
 * per key: history 1). An existing one is used as it is, but refused when it is weaker than asked
 * (memory when file was asked, fewer replicas), when it is not a writable bucket (sealed, a mirror,
 * another retention, other subjects), and — per store — when its limits would drop what the store
 * must keep. Each refusal is one sentence naming the bucket and the setting.
 *
 * KV reads go to the stream leader (`allow_direct: false` in the client): a read after a write sees
 * it, and every compare-and-set decides on the current value, also on replicated buckets.
 *
 * @internal
 */
import type { JetStreamClient, StreamConfig } from "@nats-io/jetstream"
import { type KV, Kvm } from "@nats-io/kv"
import { type ObjectStore, Objm } from "@nats-io/obj"
import { apiErrorCode } from "./errors.ts"
import { DEFAULT_PREFIX, prefixProblem } from "./names.ts"

/** Where and how many times the server keeps a bucket a store creates. */
export interface NatsStorageOptions {
  /** Replicas of a bucket the store creates (1 to 5, default 1); an existing bucket with fewer is refused. */
  readonly replicas?: number | undefined
  /** `"file"` (default) or `"memory"` for a bucket the store creates; an existing memory bucket is refused when `"file"` is asked. */
  readonly storage?: "file" | "memory" | undefined
}

/** The resolved storage options. */
export interface StorageSettings {
  readonly replicas: number
  readonly storage: "file" | "memory"
}

/** The settings `options` ask for, or a sentence naming the bad option. */
const storageSettings = (options: NatsStorageOptions): StorageSettings | string => {
  const replicas = options.replicas ?? 1
  const storage = options.storage ?? "file"
  if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    return `replicas must be an integer from 1 to 5, got ${JSON.stringify(replicas)}`
  }
  if (storage !== "file" && storage !== "memory") return `storage must be "file" or "memory", got ${JSON.stringify(storage)}`
  return { replicas, storage }
}

/** A store's prefix and storage settings from its options (default prefix `annals`), or a sentence naming the bad option. */
export const resolveStoreOptions = (
  options: NatsStorageOptions & { readonly prefix?: string | undefined }
): { readonly prefix: string; readonly settings: StorageSettings } | string => {
  const prefix = options.prefix ?? DEFAULT_PREFIX
  const settings = storageSettings(options)
  return prefixProblem(prefix) ?? (typeof settings === "string" ? settings : { prefix, settings })
}

/** Stream names taken by another configuration (two processes creating a bucket at once). */
const STREAM_NAME_IN_USE = 10058

/** Runs `open`, and once more when it lost a creation race (the second run finds the bucket). */
const retryingCreation = async <A>(open: () => Promise<A>): Promise<A> => {
  try {
    return await open()
  } catch (cause) {
    if (apiErrorCode(cause) !== STREAM_NAME_IN_USE) throw cause
    return open()
  }
}

/** Opens the KV bucket `name` (created with `settings` when missing) and its stream's configuration. */
export const openKv = (js: JetStreamClient, name: string, settings: StorageSettings): Promise<{ readonly kv: KV; readonly config: StreamConfig }> =>
  retryingCreation(async () => {
    const kv = await new Kvm(js).create(name, { history: 1, replicas: settings.replicas, storage: settings.storage, allow_direct: false })
    return { kv, config: (await kv.status()).streamInfo.config }
  })

/** Opens the object store `name` (created with `settings` when missing) and its stream's configuration. */
export const openObjectStore = (
  js: JetStreamClient,
  name: string,
  settings: StorageSettings
): Promise<{ readonly store: ObjectStore; readonly config: StreamConfig }> =>
  retryingCreation(async () => {
    const store = await new Objm(js).create(name, { replicas: settings.replicas, storage: settings.storage })
    return { store, config: (await store.status()).streamInfo.config }
  })

/** Every key of `kv` matching `filter` (deleted keys left out). */
export const listKeys = async (kv: KV, filter: string): Promise<ReadonlyArray<string>> => {
  const keys: Array<string> = []
  for await (const key of await kv.keys(filter)) keys.push(key)
  return keys
}

/** `ns` nanoseconds, for messages. */
const seconds = (ns: number) => `${ns / 1e9} s`

/**
 * What makes the existing stream of bucket `what` unusable or weaker than asked, if anything:
 * sealed, a mirror, not limits retention, not holding `subjects`, memory when file was asked, fewer
 * replicas than asked.
 */
export const bucketProblem = (
  what: string,
  config: StreamConfig,
  subjects: ReadonlyArray<string>,
  asked: StorageSettings
): string | undefined => {
  if (config.sealed) return `the existing ${what} is sealed (it takes no writes)`
  if (config.mirror !== undefined && config.mirror !== null) return `the existing ${what} is a mirror of ${config.mirror.name} (it takes no writes of its own)`
  if (config.retention !== "limits") return `the existing ${what} has ${config.retention} retention, which removes messages once consumed; it must be limits`
  const missing = subjects.filter((subject) => !(config.subjects ?? []).includes(subject))
  if (missing.length > 0) return `the existing ${what} does not hold the subjects ${missing.join(", ")} (it is not one of this kind)`
  if (asked.storage === "file" && config.storage !== "file") return `the existing ${what} keeps its data in memory, but storage "file" was asked (pass storage: "memory" to use it)`
  if (config.num_replicas < asked.replicas) return `the existing ${what} has ${config.num_replicas} replica(s), fewer than the ${asked.replicas} asked`
  return undefined
}

/** What in the existing stream of bucket `what` would drop `kept` (`"cursors and leases"`): a max age or any size limit. */
export const droppingProblem = (what: string, config: StreamConfig, kept: string, largestValue: number): string | undefined => {
  const limit = config.max_age > 0
    ? `max age (TTL) ${seconds(config.max_age)}`
    : config.max_bytes > 0
    ? `a size limit of ${config.max_bytes} bytes (max_bytes)`
    : config.max_msgs > 0
    ? `a limit of ${config.max_msgs} messages (max_msgs)`
    : config.max_msg_size > 0 && config.max_msg_size < largestValue
    ? `a value size limit of ${config.max_msg_size} bytes (max_msg_size; values up to ${largestValue} bytes must fit)`
    : undefined
  return limit && `the existing ${what} has ${limit}, which would drop or refuse ${kept}; remove the limit or use another prefix`
}

/**
 * What in the existing object store `what` would lose parts of objects still referred to (`kept`): a max age, a per-subject limit (an object's chunks share one subject), or a size limit that
 * discards old messages.
 */
export const objectStoreProblem = (what: string, config: StreamConfig, kept = "states that snapshots still refer to"): string | undefined => {
  const limit = config.max_age > 0
    ? `max age (TTL) ${seconds(config.max_age)}`
    : config.max_msgs_per_subject > 0
    ? `a limit of ${config.max_msgs_per_subject} messages per subject (max_msgs_per_subject)`
    : config.discard === "old" && (config.max_bytes > 0 || config.max_msgs > 0)
    ? `a size limit (max_bytes ${config.max_bytes}, max_msgs ${config.max_msgs}) that discards old messages`
    : undefined
  return limit && `the existing ${what} has ${limit}, which would drop parts of ${kept}; remove the limit or use another prefix`
}
