/**
 * The Journal's LISTEN connection, kept up for as long as the journal is open.
 *
 * postgres.js's own `sql.listen` listens again after its connection closes, but only once: when
 * the server is still down at that moment (a restart that takes more than a few seconds), the
 * attempt fails silently and no notification ever arrives again — followers of other processes'
 * appends would fall back to the poll for good. So the journal keeps a client of one connection of
 * its own (made from the pool's parsed options, as `sql.listen` does) and issues `LISTEN` on it again
 * after every close, retrying every `retryMs` while it fails. After each `LISTEN` that succeeds it
 * runs `listening`: commits made while nobody listened notified nobody, so the caller reads the
 * position then.
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import postgres from "postgres"

/** What the LISTEN connection calls, and how often it retries. @internal */
export interface ListenerOptions {
  readonly channel: string
  /** A notification's payload. */
  readonly notified: (payload: string) => void
  /** Run after each LISTEN that succeeded (its failure is ignored). */
  readonly listening: Effect.Effect<void, unknown>
  readonly retryMs: number
}

/**
 * Opens the LISTEN connection over `sql`'s server and options: the first `LISTEN` is made before
 * this returns (its failure is this effect's), then it is kept up in the background until `Scope`
 * closes.
 * @internal
 */
export const keepListening = (sql: postgres.Sql, options: ListenerOptions): Effect.Effect<void, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    /** Resolved when the connection closes, then replaced. */
    let closed = Deferred.makeUnsafe<void>()
    // `onnotify` is the option `sql.listen` gives its own client (not in the published types).
    const clientOptions = {
      ...(sql.options as unknown as postgres.Options<{}>),
      max: 1,
      // 0: never closed for being idle or old (it is idle until a notification).
      idle_timeout: 0,
      max_lifetime: 0,
      fetch_types: false,
      // Its own reconnect state and pace: postgres.js backs off up to 20 s between failed connects,
      // counted across the pool's connections; this one retries every `retryMs`, and its retries do
      // not slow the pool's.
      shared: { retries: 0, typeArrayMap: {} },
      backoff: () => options.retryMs / 1000,
      onnotify: (channel: string, payload: string) => {
        if (channel === options.channel) options.notified(payload)
      },
      onclose: () => {
        Deferred.doneUnsafe(closed, Effect.void)
        closed = Deferred.makeUnsafe()
      }
    }
    const client = postgres(clientOptions as postgres.Options<{}>)
    yield* Effect.addFinalizer(() => Effect.promise(() => client.end({ timeout: 1 }).catch(() => undefined)))
    const listen = Effect.suspend(() => {
      const until = closed
      return Effect.tryPromise(() => client.unsafe(`LISTEN "${options.channel}"`)).pipe(
        Effect.andThen(Effect.ignore(options.listening)),
        Effect.as(until)
      )
    })
    const first = yield* listen
    /** LISTEN again, every `retryMs` until it succeeds. */
    const relisten: Effect.Effect<Deferred.Deferred<void>> = Effect.catch(listen, () =>
      Effect.andThen(Effect.sleep(options.retryMs), Effect.suspend(() => relisten)))
    const keep = (until: Deferred.Deferred<void>): Effect.Effect<never> =>
      Deferred.await(until).pipe(Effect.andThen(relisten), Effect.flatMap(keep))
    yield* Effect.forkScoped(keep(first))
    // A connection can die without its close being seen (seen on Deno after a server restart): a
    // query on it every `PROBE_MS` finds out (its failure closes it, and `keep` listens again),
    // and the read that follows catches commits that notified nobody meanwhile.
    const probe = Effect.andThen(Effect.ignore(Effect.tryPromise(() => client.unsafe("SELECT 1"))), Effect.ignore(options.listening))
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(PROBE_MS), probe)))
  })

/** How often the LISTEN connection is probed. */
const PROBE_MS = 5_000
