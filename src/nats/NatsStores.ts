/**
 * The Journal, SnapshotStore and CursorStore on one NATS system, over one connection: what an
 * application that keeps everything in JetStream provides.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Layer from "effect/Layer"
import type { CursorStore, CursorStoreError } from "../CursorStore.ts"
import { layerFromConfig, merged, snapshotKeep } from "../internal/config.ts"
import type { Journal, JournalError } from "../Journal.ts"
import type { SnapshotStore, SnapshotStoreError } from "../SnapshotStore.ts"
import * as Client from "./NatsClient.ts"
import * as NatsCursorStore from "./NatsCursorStore.ts"
import * as NatsJournal from "./NatsJournal.ts"
import * as NatsSnapshotStore from "./NatsSnapshotStore.ts"

/**
 * Options of the three stores (one `prefix`, `replicas` and `storage` for all of them).
 *
 * @since 0.1.0
 * @category models
 */
export interface NatsStoresOptions extends NatsJournal.NatsJournalOptions, NatsSnapshotStore.NatsSnapshotStoreOptions {}

/**
 * The three stores over the NatsClient in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options: NatsStoresOptions = {}
): Layer.Layer<Journal | SnapshotStore | CursorStore, JournalError | SnapshotStoreError | CursorStoreError, Client.NatsClient> =>
  Layer.mergeAll(NatsJournal.layerClient(options), NatsSnapshotStore.layerClient(options), NatsCursorStore.layerClient(options))

/**
 * The three stores over one connection of their own (see `NatsClient.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Client.NatsClientOptions & NatsStoresOptions = {}
): Layer.Layer<Journal | SnapshotStore | CursorStore, JournalError | SnapshotStoreError | CursorStoreError | Client.NatsClientError> =>
  layerClient(options).pipe(Layer.provide(Client.layer(options)))

/**
 * The options of `layer` from `Config`: the Journal's (`NATS_URL`, `ANNALS_NATS_PREFIX`,
 * `ANNALS_NATS_REPLICAS`, `ANNALS_NATS_STORAGE`, see `NatsJournal.config`) and
 * `ANNALS_SNAPSHOT_KEEP` (≥ 1, default 1).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Client.NatsClientOptions & NatsStoresOptions> = merged(NatsJournal.config, Config.all({ keep: snapshotKeep }))

/**
 * The three stores over one connection of their own, with the options from `config` (the
 * environment by default); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Client.NatsClientOptions & NatsStoresOptions>
): Layer.Layer<Journal | SnapshotStore | CursorStore, JournalError | SnapshotStoreError | CursorStoreError | Client.NatsClientError | Config.ConfigError> =>
  layerFromConfig(config, layer, overrides)
