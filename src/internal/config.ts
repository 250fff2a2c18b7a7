/**
 * Building blocks of the layers' `config` and `layerConfig`: values that are absent leave the
 * option unset (so each layer's own default applies, stated once), and a bad value fails with a
 * `ConfigError` naming its variable.
 * @internal
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"

/** The value at `name`, or `undefined` when it is absent (a present, bad value still fails). @internal */
export const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/** An integer at `name` that passes `check`; absent: `undefined`. */
const integer = (name: string, check: SchemaAST.Filter<number>): Config.Config<number | undefined> =>
  optional(Config.schema(Schema.Int.check(check), name))

/** An integer ≥ `min` at `name`; absent: `undefined`. @internal */
export const integerAtLeast = (name: string, min: number): Config.Config<number | undefined> => integer(name, Schema.isGreaterThanOrEqualTo(min))

/** An integer from `min` to `max` at `name`; absent: `undefined`. @internal */
export const integerBetween = (name: string, min: number, max: number): Config.Config<number | undefined> =>
  integer(name, Schema.isBetween({ minimum: min, maximum: max }))

/** A string at `name` that `problem` accepts (its sentence, naming the variable, is the error otherwise); absent: `undefined`. @internal */
export const checkedString = (name: string, problem: (value: string) => string | undefined): Config.Config<string | undefined> =>
  optional(Config.schema(Schema.String.check(Schema.makeFilter((value: string) => problem(value))), name))

/** `ANNALS_SNAPSHOT_KEEP`: the `keep` option of every SnapshotStore, the snapshots kept per stream. @internal */
export const snapshotKeep: Config.Config<number | undefined> = integerAtLeast("ANNALS_SNAPSHOT_KEEP", 1)

/** The options a client's config and a store's config give together. @internal */
export const merged = <A, B>(first: Config.Config<A>, second: Config.Config<B>): Config.Config<A & B> =>
  Config.map(Config.all([first, second]), ([a, b]) => ({ ...a, ...b }))

/** `layer` over the options `config` reads, with `overrides` replacing what it read. @internal */
export const layerFromConfig = <O, S, E>(
  config: Config.Config<O>,
  layer: (options: O) => Layer.Layer<S, E>,
  overrides: Partial<O> | undefined
): Layer.Layer<S, E | Config.ConfigError> => Layer.unwrap(Effect.map(config, (options) => layer({ ...options, ...overrides })))
