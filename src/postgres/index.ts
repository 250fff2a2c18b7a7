/**
 * annals on PostgreSQL (driver: postgres.js): the Journal, SnapshotStore and CursorStore of many
 * processes on many machines sharing one database.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as PgClient from "./PgClient.ts"
/** @since 0.1.0 */
export * as PgJournal from "./PgJournal.ts"
/** @since 0.1.0 */
export * as PgSnapshotStore from "./PgSnapshotStore.ts"
/** @since 0.1.0 */
export * as PgCursorStore from "./PgCursorStore.ts"
