/**
 * A subscription instance's lease: taking it (standing by while another instance holds it) and
 * keeping it (renewing every third of its ttl). An instance acts only while `validUntil` — the time
 * it asked for the lease plus the ttl, by its own clock — has not passed.
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type { CursorStore, Lease, LeaseHeld } from "../CursorStore.ts"

/** The lease an active instance holds, and until when it may act on it. @internal */
export interface Held {
  lease: Lease
  validUntil: number
}

/** Who asks for the lease, and how long it lasts. @internal */
export interface LeaseRequest {
  readonly cursors: CursorStore
  readonly name: string
  readonly owner: string
  readonly ttlMs: number
}

const renewEvery = (request: LeaseRequest) => Math.max(1, Math.floor(request.ttlMs / 3))

/**
 * Takes the lease, asking again every third of the ttl while another instance holds it
 * (`standingBy` runs each time) or the store fails (logged). @internal
 */
export const take = (request: LeaseRequest, standingBy: (held: LeaseHeld) => Effect.Effect<void>): Effect.Effect<Held> =>
  Effect.gen(function*() {
    const { cursors, name, owner, ttlMs } = request
    while (true) {
      const started = yield* Clock.currentTimeMillis
      const result = yield* Effect.result(cursors.acquire(name, owner, ttlMs))
      if (result._tag === "Success") return { lease: result.success, validUntil: started + ttlMs }
      if (result.failure._tag === "LeaseHeld") yield* standingBy(result.failure)
      else yield* Effect.logWarning(`Subscription ${JSON.stringify(name)}: taking its lease failed, retrying: ${result.failure.message}`)
      yield* Effect.sleep(renewEvery(request))
    }
  })

/**
 * Renews `held` every third of the ttl; completes `lost` when another owner took the lease, or when
 * `validUntil` passes without a renewal — at that moment, also while a renewal is still under way
 * (a store that hangs), so the instance stops applying before anyone else may take the name. @internal
 */
export const keep = (request: LeaseRequest, held: Held, lost: Deferred.Deferred<void>): Effect.Effect<void> =>
  Effect.raceFirst(renew(request, held, lost), expire(held, lost))

const renew = (request: LeaseRequest, held: Held, lost: Deferred.Deferred<void>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { cursors, name, owner, ttlMs } = request
    while (true) {
      yield* Effect.sleep(renewEvery(request))
      const started = yield* Clock.currentTimeMillis
      const result = yield* Effect.result(cursors.acquire(name, owner, ttlMs))
      if (result._tag === "Success") {
        held.lease = result.success
        held.validUntil = started + ttlMs
      } else if (result.failure._tag === "LeaseHeld") {
        yield* Deferred.succeed(lost, undefined)
        return
      } else {
        yield* Effect.logWarning(`Subscription ${JSON.stringify(name)}: renewing its lease failed, retrying: ${result.failure.message}`)
      }
    }
  })

/** Completes `lost` once the clock reaches `held.validUntil` (which each renewal moves on). */
const expire = (held: Held, lost: Deferred.Deferred<void>): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let now = yield* Clock.currentTimeMillis; now < held.validUntil; now = yield* Clock.currentTimeMillis) {
      yield* Effect.sleep(held.validUntil - now)
    }
    yield* Deferred.succeed(lost, undefined)
  })
