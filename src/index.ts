/**
 * annals: event sourcing on Effect. The core entry point: storage contracts with their in-memory
 * layers, the runtime, codecs, and `Stores` (the storage named by a URL). Durable layers live in
 * `annals/file`, `annals/postgres`, `annals/s3`, `annals/redis` and `annals/nats`.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Archive from "./Archive.ts"
/** @since 0.1.0 */
export * as ArtifactStore from "./ArtifactStore.ts"
/** @since 0.1.0 */
export * as Codec from "./Codec.ts"
/** @since 0.1.0 */
export * as CursorStore from "./CursorStore.ts"
/** @since 0.1.0 */
export * as Journal from "./Journal.ts"
/** @since 0.1.0 */
export * as Metrics from "./Metrics.ts"
/** @since 0.1.0 */
export * as SnapshotStore from "./SnapshotStore.ts"
/** @since 0.1.0 */
export * as Aggregate from "./Aggregate.ts"
/** @since 0.1.0 */
export * as Repository from "./Repository.ts"
/** @since 0.1.0 */
export * as Archiver from "./Archiver.ts"
/** @since 0.1.0 */
export * as Checkpointer from "./Checkpointer.ts"
/** @since 0.1.0 */
export * as Subscription from "./Subscription.ts"
/** @since 0.1.0 */
export * as Projection from "./Projection.ts"
/** @since 0.1.0 */
export * as Stores from "./Stores.ts"
