/**
 * Input checks shared by every layer. Each returns a sentence naming what is wrong, or `undefined`.
 * @internal
 */
import * as Effect from "effect/Effect"

/** Longest namespace or id, in UTF-16 code units. @internal */
export const MAX_NAME_LENGTH = 256

/** Checks a namespace or stream id: a non-empty string of at most 256 characters without NUL. @internal */
export const nameProblem = (what: string, value: unknown): string | undefined => {
  if (typeof value !== "string") return `${what} must be a string, got ${typeof value}`
  if (value.length === 0) return `${what} must not be empty`
  if (value.length > MAX_NAME_LENGTH) {
    return `${what} ${JSON.stringify(value.slice(0, 32))}… is ${value.length} characters long (at most ${MAX_NAME_LENGTH})`
  }
  if (value.includes("\u0000")) return `${what} ${JSON.stringify(value)} contains a NUL character`
  return unpairedSurrogate(what, value)
}

const LONE_SURROGATE = /\p{Cs}/u

/**
 * Checks that a string is well-formed UTF-16: a lone surrogate has no UTF-8 form, so a layer that
 * stores UTF-8 would give back another string. @internal
 */
export const unpairedSurrogate = (what: string, value: string): string | undefined =>
  LONE_SURROGATE.test(value) ? `${what} ${JSON.stringify(value)} contains an unpaired surrogate (not valid Unicode)` : undefined

/** Checks a `{ namespace, id }` pair. @internal */
export const streamProblem = (stream: { readonly namespace: unknown; readonly id: unknown }): string | undefined =>
  guarded(() =>
    stream === null || typeof stream !== "object"
      ? `stream must be an object { namespace, id }, got ${describeValue(stream)}`
      : nameProblem("namespace", stream.namespace) ?? nameProblem("id", stream.id)
  )

/** Checks that `value` is a safe integer ≥ `min`. @internal */
export const integerProblem = (what: string, value: unknown, min: number): string | undefined =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= min
    ? undefined
    : `${what} must be a safe integer ≥ ${min}, got ${typeof value === "number" ? value : typeof value}`

/** A map key for a stream that cannot collide (NUL is not allowed in names). @internal */
export const streamKey = (namespace: string, id: string): string => `${namespace}\u0000${id}`

/** Index of the first element whose key is ≥ `target` in an array sorted by that key. @internal */
export const lowerBound = <A>(array: ArrayLike<A>, target: number, key: (a: A) => number): number => {
  let lo = 0
  let hi = array.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (key(array[mid]!) < target) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** `namespace/id`, for messages; never throws, whatever `stream` is. @internal */
export const formatStream = (stream: { readonly namespace: unknown; readonly id: unknown }): string => {
  try {
    return stream !== null && typeof stream === "object" ? `${String(stream.namespace)}/${String(stream.id)}` : String(stream)
  } catch {
    return describeValue(stream)
  }
}

/**
 * What a value is, for messages: `null`, `an array`, `a Map`, `an object with a null prototype`, `a number`…
 * Never throws. @internal
 */
export const describeValue = (value: unknown): string => {
  if (value === null) return "null"
  if (typeof value !== "object" && typeof value !== "function") return value === undefined ? "undefined" : `a ${typeof value}`
  try {
    if (Array.isArray(value)) return "an array"
    const proto: unknown = Object.getPrototypeOf(value)
    if (proto === null) return "an object with a null prototype"
    const name: unknown = (proto as { readonly constructor?: { readonly name?: unknown } }).constructor?.name
    return typeof name === "string" && name.length > 0 ? `a ${name}` : "an object with a custom prototype"
  } catch {
    return "an object that cannot be inspected"
  }
}

/**
 * Checks optional metadata (DESIGN §1): a plain object (its prototype `Object.prototype` or `null`)
 * whose own properties are all enumerable data properties with string keys and well-formed string
 * values — no symbol keys, no getters or setters. So every layer stores exactly the own entries it
 * was given and gives them back, `"__proto__"` included, as a plain object. @internal
 */
export const metadataProblem = (metadata: unknown): string | undefined => {
  if (metadata === undefined) return undefined
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
    return `metadata must be a plain object of strings, got ${describeValue(metadata)}`
  }
  const proto: unknown = Object.getPrototypeOf(metadata)
  if (proto !== Object.prototype && proto !== null) {
    return `metadata must be a plain object of strings, got ${describeValue(metadata)}`
  }
  for (const key of Reflect.ownKeys(metadata)) {
    if (typeof key === "symbol") return `metadata must have string keys only, got the symbol key ${String(key)}`
    const property = Object.getOwnPropertyDescriptor(metadata, key)!
    const name = `metadata ${JSON.stringify(key)}`
    if (!("value" in property)) return `${name} is an accessor (getter or setter), not a string value`
    if (property.enumerable !== true) return `${name} is not enumerable`
    if (typeof property.value !== "string") return `${name} must be a string, got ${describeValue(property.value)}`
    const problem = unpairedSurrogate("metadata key", key) ?? unpairedSurrogate(name, property.value)
    if (problem !== undefined) return problem
  }
  return undefined
}

/**
 * Runs a check that reads caller-supplied values, turning anything it throws (a throwing getter, a
 * revoked Proxy) into a problem sentence: bad input is a typed error, never a defect. @internal
 */
export const guarded = (check: () => string | undefined): string | undefined => {
  try {
    return check()
  } catch (cause) {
    return `the arguments could not be inspected (${cause instanceof Error ? cause.message : describeValue(cause)})`
  }
}

/** Succeeds when there is no problem, else fails with the error built from the message. @internal */
export const failIf = <E>(problem: string | undefined, error: (message: string) => E): Effect.Effect<void, E> =>
  problem === undefined ? Effect.void : Effect.fail(error(problem))
