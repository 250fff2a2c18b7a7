/**
 * An Aggregate is the typed definition of one kind of event-sourced entity: its namespace, the
 * Schema of its events (a union of tagged structs), the Schema of its state, the initial state and
 * a pure, total reducer `evolve(state, event)`. Commands are functions from the current state to
 * the events they decide on; a command that changes nothing returns no events.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import * as Codec from "./Codec.ts"
import { integerProblem, nameProblem } from "./internal/validate.ts"

/**
 * When the Repository saves a snapshot by itself, and which snapshot format it reads.
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotPolicy {
  /** Save a snapshot after an append once `version − lastSnapshotVersion ≥ every` (≥ 1). */
  readonly every: number
  /**
   * The version of the state's encoding. Bump it when the state Schema changes incompatibly:
   * snapshots of another schemaVersion are ignored and the state is rebuilt from events.
   */
  readonly schemaVersion: number
}

/**
 * A typed aggregate definition.
 *
 * @since 0.1.0
 * @category models
 */
export interface Aggregate<E extends { readonly _tag: string }, S> {
  readonly namespace: string
  readonly event: Schema.Codec<E, unknown>
  readonly state: Schema.Codec<S, unknown>
  readonly initial: S
  readonly evolve: (state: S, event: E) => S
  /** Automatic snapshots; `undefined` means snapshots are only written by the Checkpointer. */
  readonly snapshot: SnapshotPolicy | undefined
  /** The snapshot schema version in use (the policy's, or 1). */
  readonly schemaVersion: number
  /** Encodes and decodes events with `event`. */
  readonly eventCodec: Codec.Codec<E>
  /** Encodes and decodes states with `state`. */
  readonly stateCodec: Codec.Codec<S>
}

/**
 * Any aggregate, whatever its event and state types.
 *
 * @since 0.1.0
 * @category models
 */
// deno-lint-ignore no-explicit-any
export type Any = Aggregate<any, any>

/**
 * The event type of an aggregate.
 *
 * @since 0.1.0
 * @category type-level
 */
export type EventOf<A> = A extends Aggregate<infer E, infer _S> ? E : never

/**
 * The state type of an aggregate.
 *
 * @since 0.1.0
 * @category type-level
 */
export type StateOf<A> = A extends Aggregate<infer _E, infer S> ? S : never

/**
 * A command: decides, from the current state, which events to append (none: nothing changes).
 *
 * @since 0.1.0
 * @category models
 */
export type Command<S, E, Err = never, R = never> = (state: S) => Effect.Effect<ReadonlyArray<E>, Err, R>

/**
 * Defines an aggregate. Types flow from the Schemas: `evolve` and commands are fully typed.
 *
 * ```ts
 * const Account = Aggregate.make({
 *   namespace: "account",
 *   event: Schema.Union([Deposited, Withdrawn]),
 *   state: Schema.Struct({ balance: Schema.Finite }),
 *   initial: { balance: 0 },
 *   evolve: (state, event) => ({ balance: state.balance + (event._tag === "Deposited" ? event.amount : -event.amount) }),
 *   snapshot: { every: 100, schemaVersion: 1 }
 * })
 * ```
 *
 * Throws on an invalid namespace or policy: a definition error is a programming error.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <EventSchema extends Schema.Codec<{ readonly _tag: string }, unknown>, StateSchema extends Schema.Codec<unknown, unknown>>(
  options: {
    readonly namespace: string
    readonly event: EventSchema
    readonly state: StateSchema
    readonly initial: NoInfer<StateSchema["Type"]>
    readonly evolve: (state: NoInfer<StateSchema["Type"]>, event: NoInfer<EventSchema["Type"]>) => NoInfer<StateSchema["Type"]>
    readonly snapshot?: SnapshotPolicy | undefined
  }
): Aggregate<EventSchema["Type"], StateSchema["Type"]> => {
  const problem = nameProblem("namespace", options.namespace) ??
    (options.snapshot === undefined
      ? undefined
      : integerProblem("snapshot.every", options.snapshot.every, 1) ??
        integerProblem("snapshot.schemaVersion", options.snapshot.schemaVersion, 0))
  if (problem !== undefined) throw new Error(`Aggregate.make: ${problem}`)
  return {
    namespace: options.namespace,
    event: options.event,
    state: options.state,
    initial: options.initial,
    evolve: options.evolve,
    snapshot: options.snapshot,
    schemaVersion: options.snapshot?.schemaVersion ?? 1,
    eventCodec: Codec.make(options.event),
    stateCodec: Codec.make(options.state)
  }
}
