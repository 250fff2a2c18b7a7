/**
 * What every benchmark shares: the runtime it runs on, its sizes from the environment, its figure
 * lines on stdout, the small statistics the figures are made of, timed and interleaved rounds, and
 * running the groups asked for.
 *
 *   {"bench":"...","runtime":"bun|deno|node","value":…,"unit":"…","target":…,"met":true|false}
 */

/** The runtime this process runs on. */
export const runtime: "bun" | "deno" | "node" = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node"

/** A positive integer from the environment variable `name`, or `fallback`. */
export const sizeFromEnv = (name: string, fallback: number): number => {
  const text = process.env[name]
  if (text === undefined || text === "") return fallback
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(text)}`)
  return value
}

/** One measured figure. */
export interface Figure {
  readonly bench: string
  readonly value: number
  readonly unit: string
  /** A lower bound (`min`) or an upper bound (`max`); none for informational figures. */
  readonly target?: { readonly min: number } | { readonly max: number } | undefined
}

const round = (value: number) => (Math.abs(value) >= 100 ? Math.round(value) : Number(value.toPrecision(4)))

/** Prints a figure as one JSON line, with its target and whether it was met (`null` for informational figures). */
export const report = (figure: Figure): void => {
  const target = figure.target === undefined ? null : "min" in figure.target ? figure.target.min : figure.target.max
  const met = figure.target === undefined
    ? null
    : "min" in figure.target
    ? figure.value >= figure.target.min
    : figure.value <= figure.target.max
  console.log(JSON.stringify({ bench: figure.bench, runtime, value: round(figure.value), unit: figure.unit, target, met }))
}

/** A target that applies on Bun only (the others report the figure without one). */
export const onBun = (target: { readonly min: number }): { readonly min: number } | undefined => (runtime === "bun" ? target : undefined)

/** The `p` quantile (0–1) of ascending `sorted` values (nearest rank). */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!

/** The median of `values` (the lower one of an even count). */
export const median = (values: ReadonlyArray<number>): number => percentile([...values].sort((a, b) => a - b), 0.5)

/** The rounds of `interleaved` by default: ANNALS_BENCH_ROUNDS, default 5. */
export const benchRounds = (): number => sizeFromEnv("ANNALS_BENCH_ROUNDS", 5)

/** Seconds `run` takes. */
export const timed = async (run: () => Promise<unknown>): Promise<number> => {
  const start = performance.now()
  await run()
  return (performance.now() - start) / 1000
}

/** Options of `interleaved`. */
export interface InterleavedOptions {
  /** Measured rounds after the warm-up (default `benchRounds()`). */
  readonly rounds?: number | undefined
  /** Runs, untimed, before every run of a variant (the warm-up's too). */
  readonly before?: (() => Promise<void>) | undefined
}

/**
 * Runs each variant once (warm-up), then `rounds` interleaved rounds, so that a slow stretch of the
 * machine hits all alike; each variant's seconds, by round: the seconds it returns, if it times
 * itself, else how long it took.
 */
export const interleaved = async <K extends string>(
  variants: Record<K, () => Promise<number | void>>,
  options: InterleavedOptions = {}
): Promise<Record<K, Array<number>>> => {
  const rounds = options.rounds ?? benchRounds()
  const before = options.before ?? (async () => {})
  const names = Object.keys(variants) as Array<K>
  for (const name of names) {
    await before()
    await variants[name]()
  }
  const seconds = Object.fromEntries(names.map((name) => [name, [] as Array<number>])) as Record<K, Array<number>>
  for (let r = 0; r < rounds; r++) {
    for (const name of names) {
      await before()
      const start = performance.now()
      const own = await variants[name]()
      seconds[name].push(typeof own === "number" ? own : (performance.now() - start) / 1000)
    }
  }
  return seconds
}

/** The median of `count / seconds` over the rounds. */
export const rate = (count: number, seconds: ReadonlyArray<number>): number => median(seconds.map((s) => count / s))

/** The median over the rounds of rate(a) / rate(b), i.e. of seconds(b) / seconds(a) (each taken between neighbouring runs). */
export const rateRatio = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number => median(a.map((s, r) => b[r]! / s))

/**
 * Runs the groups named on the command line (all of them when none is), in the order of `groups`,
 * then `cleanup`; an unknown name is an error before anything runs.
 */
export const runGroups = async (
  groups: Readonly<Record<string, () => Promise<void>>>,
  cleanup: () => void | Promise<void>
): Promise<void> => {
  const argv = process.argv.slice(2)
  const unknown = argv.filter((group) => !Object.hasOwn(groups, group))
  if (unknown.length > 0) {
    throw new Error(`unknown benchmark group(s) ${unknown.join(", ")}: expected ${Object.keys(groups).join(", ")}`)
  }
  try {
    for (const [name, group] of Object.entries(groups)) {
      if (argv.length === 0 || argv.includes(name)) await group()
    }
  } finally {
    await cleanup()
  }
}
