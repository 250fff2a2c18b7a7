/**
 * The metrics annals records, as Effect `Metric`s. They live in the `Metric.MetricRegistry` of the
 * fiber that records them (Effect's default registry unless you provide one), so any exporter that
 * reads Effect metrics (`effect/observability`'s Prometheus or OTLP exporters, `Metric.snapshot`)
 * sees them. Read one directly with `Metric.value(Metrics.appendDuration)`.
 *
 * Series carry attributes: `backend` (`"memory"`, `"file"`, `"postgres"`, `"redis"`, `"nats"`) on
 * the journal metrics, `namespace` on the Repository metrics, `subscription` on the subscription lag.
 * Durations are wall-clock milliseconds (`performance.now()`), so a `TestClock` does not zero them.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"

/** A counter that only goes up. */
const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })

/** Millisecond boundaries for latencies from 10 µs to about 10 s. */
const millisBoundaries = Metric.exponentialBoundaries({ start: 0.01, factor: 2, count: 21 })

/**
 * `annals.journal.append.duration_ms`: the time from calling `Journal.append` to its outcome (success
 * or failure), in milliseconds; attribute `backend`.
 *
 * @since 0.1.0
 * @category journal
 */
export const appendDuration: Metric.Histogram<number> = Metric.histogram("annals.journal.append.duration_ms", {
  description: "Journal.append latency in milliseconds",
  boundaries: millisBoundaries
})

/**
 * `annals.journal.group_commit.size`: how many appends one group commit covered — one fdatasync of
 * the file journal with durability `"always"`, one transaction of the PostgreSQL journal; attribute `backend`.
 *
 * @since 0.1.0
 * @category journal
 */
export const groupCommitSize: Metric.Histogram<number> = Metric.histogram("annals.journal.group_commit.size", {
  description: "Appends per group commit",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 11 })
})

/**
 * `annals.journal.fsync.duration_ms`: how long one flush of the file journal's active segment
 * (fdatasync) took, in milliseconds; attribute `backend` (`"file"`).
 *
 * @since 0.1.0
 * @category journal
 */
export const fsyncDuration: Metric.Histogram<number> = Metric.histogram("annals.journal.fsync.duration_ms", {
  description: "File journal fdatasync time in milliseconds",
  boundaries: millisBoundaries
})

/**
 * `annals.records.replayed`: journal (and archive) records a Repository folded through `evolve` to
 * rebuild states (loads, executes, the Checkpointer's snapshots); attribute `namespace`.
 *
 * @since 0.1.0
 * @category repository
 */
export const recordsReplayed: Metric.Counter<number> = counter("annals.records.replayed", "Records folded to rebuild aggregate states")

/**
 * `annals.repository.conflicts`: appends of `Repository.execute` that failed with a
 * `VersionConflict`; attribute `namespace`.
 *
 * @since 0.1.0
 * @category repository
 */
export const conflicts: Metric.Counter<number> = counter("annals.repository.conflicts", "VersionConflicts met by Repository.execute")

/**
 * `annals.repository.retries`: reloads and retries of `Repository.execute` after a
 * `VersionConflict` (a conflict past `maxRetries` is counted in `conflicts` only); attribute `namespace`.
 *
 * @since 0.1.0
 * @category repository
 */
export const retries: Metric.Counter<number> = counter("annals.repository.retries", "Retries of Repository.execute after a VersionConflict")

/**
 * `annals.archive.lag`: records the Archiver has not archived yet (`lastSeq − archivedThrough`, in
 * seqs), set after every upload round, flush and `status`.
 *
 * @since 0.1.0
 * @category archive
 */
export const archiveLag: Metric.Gauge<number> = Metric.gauge("annals.archive.lag", {
  description: "Journal seqs not archived yet"
})

/**
 * `annals.subscription.lag`: records a subscription has not applied yet (`lastSeq` minus the last
 * seq it handled, in seqs), set after every delivered batch and every `status`; attribute `subscription`.
 *
 * @since 0.1.0
 * @category subscription
 */
export const subscriptionLag: Metric.Gauge<number> = Metric.gauge("annals.subscription.lag", {
  description: "Journal seqs a subscription has not applied yet"
})
