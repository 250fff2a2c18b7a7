/**
 * annals on Redis (client: ioredis, through Effect's `Redis` service): the Journal on Redis Streams,
 * and the SnapshotStore and CursorStore on keys, for processes that share one Redis.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as RedisClient from "./RedisClient.ts"
/** @since 0.1.0 */
export * as RedisJournal from "./RedisJournal.ts"
/** @since 0.1.0 */
export * as RedisSnapshotStore from "./RedisSnapshotStore.ts"
/** @since 0.1.0 */
export * as RedisCursorStore from "./RedisCursorStore.ts"
/** @since 0.1.0 */
export * as RedisStores from "./RedisStores.ts"
