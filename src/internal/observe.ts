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
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import type { StreamRef } from "../Journal.ts"

/** The value of the `annals.backend` span attribute and the `backend` metric attribute. @internal */
export type Backend = "memory" | "file" | "postgres" | "redis" | "nats"

/** Span options with `attributes` and no stack capture (a `new Error()` per call otherwise). @internal */
export const spanOptions = (attributes: Record<string, unknown>): Tracer.SpanOptions => ({ attributes, captureStackTrace: false })

/** Whether the fiber has a tracer installed: Effect's native tracer, the default, exports nothing. @internal */
export const isTraced = (fiber: { readonly getRef: <A>(ref: Context.Reference<A>) => A }): boolean =>
  fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer

/**
 * `effect` in the span `name` (`options` made only then) — or `effect` as it is when no tracer is
 * installed: a span nobody exports costs a load about 10 µs each (a `NativeSpan`, clock reads, the
 * parent span put in the context). `annotate` sets attributes from the result on the span. @internal
 */
export const traced = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  options: () => Tracer.SpanOptions,
  annotate?: (value: A) => Record<string, unknown>
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    if (!isTraced(fiber)) return effect
    const annotated = annotate === undefined
      ? effect
      : Effect.tap(effect, (value) => Effect.annotateCurrentSpan(annotate(value)))
    return Effect.withSpan(annotated, name, options())
  })

/** `stream` in the span `name` when a tracer is installed (see `traced`), else `stream` as it is. @internal */
export const tracedStream = <A, E, R>(stream: Stream.Stream<A, E, R>, name: string, options: () => Tracer.SpanOptions): Stream.Stream<A, E, R> =>
  Stream.unwrap(Effect.withFiber((fiber) => Effect.succeed(isTraced(fiber) ? Stream.withSpan(stream, name, options()) : stream)))

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
