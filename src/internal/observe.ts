/**
 * Span and metric helpers shared by the instrumented modules: span options without a captured call
 * stack (the frame would point here, not at the caller), the span attributes naming a stream, and
 * metric recorders cheap enough for every append and for the callback-driven write paths (the file
 * writer, the PostgreSQL group commit), which run outside any fiber.
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Tracer from "effect/Tracer"
import type { StreamRef } from "../Journal.ts"

/** The value of the `annals.backend` span attribute and the `backend` metric attribute. @internal */
export type Backend = "memory" | "file" | "postgres" | "redis" | "nats"

/** Span options with `attributes` and no stack capture (a `new Error()` per call otherwise). @internal */
export const spanOptions = (attributes: Record<string, unknown>): Tracer.SpanOptions => ({ attributes, captureStackTrace: false })

/** The span attributes naming `stream` (read defensively: the operation validates it, not this). @internal */
export const streamAttributes = (stream: StreamRef | undefined): Record<string, unknown> => ({
  "annals.stream.namespace": stream?.namespace,
  "annals.stream.id": stream?.id
})

/**
 * Updates `metric`'s series with `attributes` — the series `Metric.withAttributes(metric, attributes)`
 * updates — in a given context. `withAttributes` copies the context on every update; this copies it
 * once per context it sees (a fiber's context rarely changes between its appends). @internal
 */
export const attributedRecorder = <Input, State>(metric: Metric.Metric<Input, State>, attributes: Metric.Metric.AttributeSet) => {
  let from: Context.Context<never> | undefined
  let to: Context.Context<never> = Context.empty()
  return (input: Input, context: Context.Context<never>): void => {
    if (context !== from) {
      from = context
      to = Context.add(context, Metric.CurrentMetricAttributes, { ...Context.get(context, Metric.CurrentMetricAttributes), ...attributes })
    }
    metric.updateUnsafe(input, to)
  }
}

/**
 * `attributedRecorder` bound to the context of the fiber that runs this (its `MetricRegistry`), for
 * code that runs in callbacks rather than in a fiber. @internal
 */
export const boundRecorder = <Input, State>(
  metric: Metric.Metric<Input, State>,
  attributes: Metric.Metric.AttributeSet
): Effect.Effect<(input: Input) => void> =>
  Effect.map(Effect.context<never>(), (context) => {
    const record = attributedRecorder(metric, attributes)
    return (input: Input) => record(input, context)
  })
