/**
 * The follow streams of one Redis journal that run now. The journal's watcher (an `XREAD BLOCK` of
 * the log, for other processes' appends) runs only while there is one: with none, nothing waits on
 * the settled position, and a lone writer's appends do not wake it.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

/** A count of running follow streams, and a wait for the first. */
export class Followers {
  private running = 0
  private wake: () => void = () => {}

  /** True while a follow stream runs. */
  get any(): boolean {
    return this.running > 0
  }

  /** Succeeds once a follow stream runs: at once if one does, else when the next one starts. Interruptible. */
  readonly started: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.running > 0) return resume(Effect.void)
    this.wake = () => {
      this.wake = () => {}
      resume(Effect.void)
    }
    return Effect.sync(() => void (this.wake = () => {}))
  })

  /** `stream`, counted while it runs. */
  counted<A, E>(stream: Stream.Stream<A, E>): Stream.Stream<A, E> {
    return Stream.unwrap(Effect.acquireRelease(
      Effect.sync(() => {
        this.running++
        this.wake()
        return stream
      }),
      () => Effect.sync(() => void this.running--)
    ))
  }
}
