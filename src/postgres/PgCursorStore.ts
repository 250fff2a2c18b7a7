/**
 * The CursorStore on PostgreSQL: one table, `<prefix>cursors`, one row per subscription name with
 * its cursor, its lease and the last fencing token handed out. Created on start if missing.
 *
 * The rules (forward-only cursors, leases by compare-and-set, fencing tokens) are those of every
 * layer (`CursorStore.make`); each change of a name runs in one transaction holding the name's row
 * lock, so processes on many machines sharing the table take and renew leases safely: no two
 * owners hold a name at once, and a stale owner's commit fails with `LeaseLost`. Expiries are the
 * acquirer's clock plus the ttl, so the machines' clocks need agree only within the ttl. `list`
 * orders names as JavaScript compares strings (UTF-16 code units), not by the database's collation.
 * A failed query is a `CursorStoreError` naming the operation, the name and the server's error.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { CursorStore, type CursorStoreError, make as makeStore } from "../CursorStore.ts"
import { layerFromConfig } from "../internal/config.ts"
import { openCursorTable } from "./internal/cursorTable.ts"
import { PgClient, type PgClientError, type PgClientOptions } from "./PgClient.ts"
import * as Client from "./PgClient.ts"

/**
 * Builds the CursorStore over the client in context, creating its table if missing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<CursorStore, CursorStoreError, PgClient> = Effect.gen(function*() {
  return makeStore(yield* openCursorTable(yield* PgClient))
})

/**
 * The CursorStore over the PgClient in context (to share one pool with the other PostgreSQL layers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient: Layer.Layer<CursorStore, CursorStoreError, PgClient> = Layer.effect(CursorStore, make)

/**
 * The CursorStore with a client of its own (see `PgClient.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: PgClientOptions): Layer.Layer<CursorStore, CursorStoreError | PgClientError> =>
  layerClient.pipe(Layer.provide(Client.layer(options)))

/**
 * The CursorStore over a client of its own, with the options from `PgClient.config` (the
 * environment by default); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (overrides?: Partial<PgClientOptions>): Layer.Layer<CursorStore, CursorStoreError | PgClientError | Config.ConfigError> =>
  layerFromConfig(Client.config, layer, overrides)
