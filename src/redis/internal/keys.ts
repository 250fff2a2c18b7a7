/**
 * The Redis keys of one annals store. Every key starts with the store's hash tag `{<prefix>}`, so all
 * of them live in one slot (a script may touch any of them, on Redis Cluster too), and `prefix`
 * isolates tenants on one server. Stream names go into keys percent-encoded (`encodeURIComponent`,
 * which leaves no `:`, `{` or `}`), so no namespace or id can reach another key.
 *
 * @internal
 */

/** The default prefix. */
export const DEFAULT_PREFIX = "annals"

/** What is wrong with `prefix` as a key prefix, if anything. */
export const prefixProblem = (prefix: unknown): string | undefined =>
  typeof prefix !== "string" || !/^[A-Za-z0-9_.:-]{1,64}$/.test(prefix)
    ? `prefix must be 1 to 64 characters of A-Z, a-z, 0-9, "_", ".", ":" and "-", got ${JSON.stringify(prefix)}`
    : undefined

/** The keys of the store under `prefix` (validated). */
export const storeKeys = (prefix: string) => {
  const tag = `{${prefix}}`
  const name = (namespace: string, id: string) => `${encodeURIComponent(namespace)}:${encodeURIComponent(id)}`
  return {
    tag,
    /** Journal: the log, a Redis Stream with entry id `<seq>-0` per record. */
    log: `${tag}:journal:log`,
    /** Journal: a hash of the position (lastSeq, checkpoint, truncatedBefore, removedBefore). */
    meta: `${tag}:journal:meta`,
    /** Journal: a hash of each stream's version, by `name(namespace, id)`. */
    versions: `${tag}:journal:versions`,
    /** Journal: a hash of each recent append's outcome by its id (a retry whose first try was stored finds it). */
    appendOutcomes: `${tag}:journal:append-outcomes`,
    /** Journal: the ids of `appendOutcomes` in a Redis Stream, in the order they were stored (the oldest are forgotten). */
    appendTimes: `${tag}:journal:append-times`,
    /** Journal: one stream's records, a Redis Stream with entry id `<version>-0` per record. */
    stream: (namespace: string, id: string) => `${tag}:journal:stream:${name(namespace, id)}`,
    /** SnapshotStore: one stream's snapshots. */
    snapshots: (namespace: string, id: string) => `${tag}:snapshot:${name(namespace, id)}`,
    /** SnapshotStore: the ids of a namespace's streams that have snapshots. */
    snapshotIds: (namespace: string) => `${tag}:snapshot-ids:${encodeURIComponent(namespace)}`,
    /** CursorStore: a hash of every cursor by name. */
    cursors: `${tag}:cursors`,
    /** The field of a stream in `versions`. */
    name
  }
}

/** The keys of one store. */
export type StoreKeys = ReturnType<typeof storeKeys>
