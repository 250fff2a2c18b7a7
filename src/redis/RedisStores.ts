/**
 * The Journal, SnapshotStore and CursorStore on one Redis, over one client: what an application
 * that keeps everything in Redis provides.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Layer from "effect/Layer"
import type * as EffectRedis from "effect/persistence/Redis"
import type { CursorStore, CursorStoreError } from "../CursorStore.ts"
import { layerFromConfig, merged, snapshotKeep } from "../internal/config.ts"
import type { Journal, JournalError } from "../Journal.ts"
import type { SnapshotStore, SnapshotStoreError } from "../SnapshotStore.ts"
import * as Client from "./RedisClient.ts"
import * as RedisCursorStore from "./RedisCursorStore.ts"
import * as RedisJournal from "./RedisJournal.ts"
import * as RedisSnapshotStore from "./RedisSnapshotStore.ts"

/**
 * Options of the three stores (one `prefix` for all of them).
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisStoresOptions extends RedisJournal.RedisJournalOptions, RedisSnapshotStore.RedisSnapshotStoreOptions {}

/**
 * The three stores over the `Redis` service in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options: RedisStoresOptions = {}
): Layer.Layer<Journal | SnapshotStore | CursorStore, JournalError | SnapshotStoreError | CursorStoreError, EffectRedis.Redis> =>
  Layer.mergeAll(RedisJournal.layerClient(options), RedisSnapshotStore.layerClient(options), RedisCursorStore.layerClient(options))

/**
 * The three stores over one client of their own (see `RedisClient.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Client.RedisClientOptions & RedisStoresOptions = {}
): Layer.Layer<Journal | SnapshotStore | CursorStore, JournalError | SnapshotStoreError | CursorStoreError | Client.RedisClientError> =>
  layerClient(options).pipe(Layer.provide(Client.layer(options)))

/**
 * The options of `layer` from `Config`: the Journal's (`REDIS_URL`, `ANNALS_REDIS_PREFIX`,
 * `ANNALS_REDIS_BLOCK_MS`, see `RedisJournal.config`) and `ANNALS_SNAPSHOT_KEEP` (≥ 1, default 1).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Client.RedisClientOptions & RedisStoresOptions> = merged(RedisJournal.config, Config.all({ keep: snapshotKeep }))

/**
 * The three stores over one client of their own, with the options from `config` (the environment
 * by default); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Client.RedisClientOptions & RedisStoresOptions>
): Layer.Layer<Journal | SnapshotStore | CursorStore, JournalError | SnapshotStoreError | CursorStoreError | Client.RedisClientError | Config.ConfigError> =>
  layerFromConfig(config, layer, overrides)
