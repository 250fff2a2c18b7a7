/**
 * annals on NATS JetStream (client: the official `@nats-io` v3 packages): the Journal on a
 * JetStream stream, the SnapshotStore and CursorStore in KV buckets, and projection export artifacts
 * in an object store, for processes and machines that share one NATS system.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as NatsClient from "./NatsClient.ts"
/** @since 0.1.0 */
export * as NatsJournal from "./NatsJournal.ts"
/** @since 0.1.0 */
export * as NatsSnapshotStore from "./NatsSnapshotStore.ts"
/** @since 0.1.0 */
export * as NatsCursorStore from "./NatsCursorStore.ts"
/** @since 0.1.0 */
export * as NatsStores from "./NatsStores.ts"
/** @since 0.1.0 */
export * as NatsArtifacts from "./NatsArtifacts.ts"
