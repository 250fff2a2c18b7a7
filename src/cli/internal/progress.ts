/**
 * Progress of a long operation on standard error: on a terminal, one bar redrawn in place with the
 * count, the rate and the time left, replaced at the end by a line with the total and the time
 * taken; otherwise a plain line every 2 seconds, and that closing line, for an operation that took
 * that long (a quick one prints nothing). Standard output stays free for the command's data.
 * @internal
 */
import * as Effect from "effect/Effect"
import process from "node:process"

/** A running progress display. @internal */
export interface Progress {
  /** Counts `n` more units done. */
  readonly advance: (n: number) => Effect.Effect<void>
  /** Raises the expected total (e.g. once it is known). */
  readonly expect: (total: number) => Effect.Effect<void>
  /** Draws the closing line. */
  readonly done: Effect.Effect<void>
}

/** How progress is shown: `"bar"` (a terminal), `"lines"`, or `"none"` (`--quiet`). @internal */
export type ProgressMode = "bar" | "lines" | "none"

/** The mode for this process' standard error. @internal */
export const modeOf = (quiet: boolean): ProgressMode => quiet ? "none" : process.stderr.isTTY === true ? "bar" : "lines"

const count = (n: number) => Math.round(n).toLocaleString("en-US")

const clock = (seconds: number) => {
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const rest = String(s % 60).padStart(2, "0")
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`
}

const BAR_WIDTH = 24
const BAR_EVERY_MS = 100
const LINE_EVERY_MS = 2_000

/**
 * A progress display for `label`, counting `unit`s toward `total` (unknown: no percentage and no
 * time left). @internal
 */
export const make = (label: string, unit: string, total: number | undefined, mode: ProgressMode): Effect.Effect<Progress> =>
  Effect.sync(() => {
    const started = performance.now()
    let expected = total
    let doneCount = 0
    // A bar appears at once; plain lines only for an operation that takes a while.
    let drawnAt = mode === "bar" ? Number.NEGATIVE_INFINITY : started
    const line = (now: number) => {
      const seconds = (now - started) / 1000
      const rate = seconds > 0 ? doneCount / seconds : 0
      const of = expected !== undefined && expected > 0 ? `/${count(expected)}` : ""
      const left = expected !== undefined && rate > 0 && expected > doneCount ? `, ${clock((expected - doneCount) / rate)} left` : ""
      return { seconds, rate, text: `${count(doneCount)}${of} ${unit}, ${count(rate)}/s${left}` }
    }
    const draw = (now: number) => {
      const { text } = line(now)
      if (mode === "bar") {
        const fraction = expected !== undefined && expected > 0 ? Math.min(1, doneCount / expected) : 0
        const filled = Math.round(fraction * BAR_WIDTH)
        const percent = expected !== undefined && expected > 0 ? `${String(Math.floor(fraction * 100)).padStart(3)}% ` : ""
        process.stderr.write(`\r\x1b[2K${label} [${"█".repeat(filled)}${"░".repeat(BAR_WIDTH - filled)}] ${percent}${text}`)
      } else if (mode === "lines") {
        process.stderr.write(`${label}: ${text}\n`)
      }
    }
    return {
      advance: (n) =>
        Effect.sync(() => {
          doneCount += n
          if (mode === "none") return
          const now = performance.now()
          if (now - drawnAt >= (mode === "bar" ? BAR_EVERY_MS : LINE_EVERY_MS)) {
            drawnAt = now
            draw(now)
          }
        }),
      expect: (n) => Effect.sync(() => void (expected = Math.max(expected ?? 0, n))),
      done: Effect.sync(() => {
        // Plain lines say nothing of an operation that ended before the first was due.
        if (mode === "none" || (mode === "lines" && drawnAt === started)) return
        const { rate, seconds } = line(performance.now())
        const summary = `${label}: ${count(doneCount)} ${unit} in ${seconds.toFixed(1)} s (${count(rate)}/s)\n`
        process.stderr.write(mode === "bar" ? `\r\x1b[2K${summary}` : summary)
      })
    }
  })
