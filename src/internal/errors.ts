/**
 * The explicit type of a `Data.TaggedError` base class, so that every public error class extends a
 * plainly typed identifier (JSR's fast check cannot infer a call expression in `extends`).
 * @internal
 */
import type * as Cause from "effect/Cause"

/** A constructor of yieldable errors tagged `Tag` carrying `Fields`. @internal */
export type TaggedErrorClass<Tag extends string, Fields> = new(
  args: Fields
) => Cause.YieldableError & { readonly _tag: Tag } & Readonly<Fields>
