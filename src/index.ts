/**
 * annals: event sourcing on Effect. The core entry point: storage contracts with their in-memory
 * layers, and codecs. Durable layers live in `annals/file` (and, later, `annals/postgres`, `annals/s3`).
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
