/**
 * `Subscription.make` and the options it checks, shared with the Projection module (which adds a
 * keeper: a handler with state of its own).
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as os from "node:os"
import { Archive } from "../Archive.ts"
import { CursorStore } from "../CursorStore.ts"
import { Journal } from "../Journal.ts"
import type { Requirements, Subscription, SubscriptionError, SubscriptionErrorFields, SubscriptionOptions } from "../Subscription.ts"
import { expiryProblem } from "./cursorChecks.ts"
import * as Instance from "./subscriptionInstance.ts"
import { integerProblem, nameProblem } from "./validate.ts"

const DEFAULT_MAX_RECORDS = 1000
const DEFAULT_TTL_MS = 10_000
const DEFAULT_RETRY = { times: 5, baseDelayMs: 100, maxDelayMs: 10_000 } as const

const optionsProblem = (options: SubscriptionOptions<unknown, unknown, boolean>): string | undefined => {
  const names = (what: string, list: unknown) =>
    list === undefined ? undefined : !Array.isArray(list) || list.length === 0
      ? `${what} must be a non-empty array of names`
      : list.map((name) => nameProblem(what, name)).find((problem) => problem !== undefined)
  const count = (what: string, value: unknown, min: number) => value === undefined ? undefined : integerProblem(what, value, min)
  if (typeof options.handle !== "function") return "handle must be a function"
  if (options.from !== undefined && options.from !== "start" && options.from !== "end") {
    return `from must be "start" or "end", got ${JSON.stringify(options.from)}`
  }
  return names("namespaces", options.namespaces) ?? names("types", options.types) ??
    count("batch.maxRecords", options.batch?.maxRecords, 1) ?? count("batch.maxWaitMs", options.batch?.maxWaitMs, 0) ??
    count("retry.times", options.retry?.times, 0) ?? count("retry.baseDelayMs", options.retry?.baseDelayMs, 0) ??
    count("retry.maxDelayMs", options.retry?.maxDelayMs, 0) ?? count("lease.ttlMs", options.lease?.ttlMs, 3) ??
    (options.lease?.owner === undefined ? undefined : nameProblem("lease.owner", options.lease.owner) ??
      (options.lease.owner.length > 240 ? "lease.owner must be at most 240 characters long" : undefined))
}

/**
 * Checks `options`, fills in the defaults and starts an instance in a background fiber of the
 * current scope (see `Subscription.make`); `error` builds the module's error. @internal
 */
export const start = <E, R, A extends boolean = false>(
  options: SubscriptionOptions<E, R, A>,
  keeper: Instance.Keeper<R> | undefined,
  error: (fields: SubscriptionErrorFields) => SubscriptionError
): Effect.Effect<Subscription, SubscriptionError, Scope.Scope | Requirements<R, A>> =>
  Effect.gen(function*() {
    if (options === null || typeof options !== "object") {
      const message = `Subscription.make: options must be an object, got ${options}`
      return yield* Effect.fail(error({ name: String(options), method: "make", message }))
    }
    const name = options.name
    const ttlMs = options.lease?.ttlMs ?? DEFAULT_TTL_MS
    const now = yield* Clock.currentTimeMillis
    // Every acquire refuses a lease that would end beyond MAX_SAFE_INTEGER: the instance would wait for ever.
    const late = (): string | undefined => {
      const problem = expiryProblem(now, ttlMs)
      return problem === undefined ? undefined : `lease.${problem}`
    }
    const problem = nameProblem("name", name) ?? optionsProblem(options) ?? late()
    if (problem !== undefined) {
      const which = typeof name === "string" ? ` (subscription ${JSON.stringify(name)})` : ""
      return yield* Effect.fail(error({ name: String(name), method: "make", message: `Subscription.make${which}: ${problem}` }))
    }
    const journal = yield* Journal
    const cursors = yield* CursorStore
    const archive = options.archive === true ? yield* Archive : undefined
    const instance = Instance.make(
      {
        name,
        owner: `${options.lease?.owner ?? `${os.hostname()}/${process.pid}`}/${Math.random().toString(36).slice(2, 10)}`,
        from: options.from ?? "start",
        namespaces: options.namespaces === undefined ? undefined : new Set(options.namespaces),
        types: options.types === undefined ? undefined : new Set(options.types),
        maxRecords: options.batch?.maxRecords ?? DEFAULT_MAX_RECORDS,
        maxWaitMs: options.batch?.maxWaitMs ?? 0,
        retry: {
          times: options.retry?.times ?? DEFAULT_RETRY.times,
          baseDelayMs: options.retry?.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs,
          maxDelayMs: options.retry?.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs
        },
        ttlMs,
        handle: options.handle,
        keeper
      },
      { journal, cursors, archive, error }
    )
    yield* Effect.forkScoped(instance.run)
    return instance.handle
  }) as Effect.Effect<Subscription, SubscriptionError, Scope.Scope | Requirements<R, A>>
