/**
 * The one place every Journal is instrumented: each layer's `make` wraps its service with `observe`,
 * which adds a span (`annals.Journal.<method>`, attribute `annals.backend`) to every public operation
 * that does a bounded piece of work and records `Metrics.appendDuration`. `lastSeq` and `checkpoint`
 * (called on every subscription batch and status) and the record streams `replayFrom`, `replayUntil`
 * and `follow` (long or endless, record by record) stay untraced.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Tracer from "effect/Tracer"
import type { Journal } from "../Journal.ts"
import * as Metrics from "../Metrics.ts"
import { attributedRecorder, type Backend, isTraced, spanOptions, streamAttributes, traced, tracedStream } from "./observe.ts"

/** `journal` with spans and metrics; `backend` names its layer in both. @internal */
export const observe = (journal: Journal, backend: Backend): Journal => {
  const recordLatency = attributedRecorder(Metrics.appendDuration, { backend })
  const options = (attributes: Record<string, unknown>) => spanOptions({ "annals.backend": backend, ...attributes })
  const seqSpan = (method: string, seq: number) => Effect.withSpan(`annals.Journal.${method}`, options({ "annals.seq": seq }))
  return {
    ...journal,
    // On every append: with no tracer installed (Effect's native tracer, which exports nothing) no span is made at all.
    append: (stream, expectedVersion, events) =>
      Effect.withFiber((fiber) => {
        const start = performance.now()
        const timed = (span: Tracer.Span | undefined) =>
          Effect.onExitPrimitive(journal.append(stream, expectedVersion, events), (exit) => {
            if (span !== undefined && exit._tag === "Success") {
              span.attribute("annals.first_seq", exit.value.firstSeq)
              span.attribute("annals.last_seq", exit.value.lastSeq)
              span.attribute("annals.version", exit.value.version)
            }
            recordLatency(performance.now() - start, fiber.context)
            return undefined
          })
        if (!isTraced(fiber)) return timed(undefined)
        return Effect.useSpan(
          "annals.Journal.append",
          options({ ...streamAttributes(stream), "annals.expected_version": expectedVersion, "annals.events": events?.length }),
          (span) => Effect.withParentSpan(timed(span), span, { captureStackTrace: false })
        )
      }),
    read: (stream, readOptions) =>
      tracedStream(journal.read(stream, readOptions), "annals.Journal.read", () =>
        options({
          ...streamAttributes(stream),
          "annals.from": readOptions?.from,
          "annals.to": readOptions?.to,
          "annals.max": readOptions?.max
        })),
    version: (stream) =>
      traced(journal.version(stream), "annals.Journal.version", () => options(streamAttributes(stream)), (version) => ({
        "annals.version": version
      })),
    truncateBefore: (seq) => seqSpan("truncateBefore", seq)(journal.truncateBefore(seq)),
    setCheckpoint: (seq) => seqSpan("setCheckpoint", seq)(journal.setCheckpoint(seq)),
    restore: (records) => Effect.withSpan(journal.restore(records), "annals.Journal.restore", options({}))
  }
}
