/**
 * annals/testing: given/when/then specs of aggregates (and projections), for node:test, bun test and
 * deno test alike, or as Effects.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as AggregateSpec from "./AggregateSpec.ts"
/** @since 0.1.0 */
export * as ProjectionSpec from "./ProjectionSpec.ts"
