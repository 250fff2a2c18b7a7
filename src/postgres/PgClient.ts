/**
 * The connection the PostgreSQL layers share: a postgres.js pool, the schema their tables live in,
 * and the prefix of their table names. `PgClient.layer({ url })` opens (and at the end closes) a
 * pool; `PgClient.layer({ sql })` uses one the application already has (and leaves it open).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import postgres from "postgres"
import { checkedString, integerAtLeast } from "../internal/config.ts"
import type { TaggedErrorClass } from "../internal/errors.ts"
import { redactUrl } from "../internal/redact.ts"
import { identifierProblem, quoteIdentifier } from "./internal/identifiers.ts"

/**
 * The fields of a `PgClientError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface PgClientErrorFields {
  readonly method: string
  readonly message: string
  readonly cause?: unknown
}

const PgClientErrorBase: TaggedErrorClass<"PgClientError", PgClientErrorFields> = Data.TaggedError("PgClientError")

/**
 * Bad options, or the server could not be reached when the client was opened.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgClientError extends PgClientErrorBase {}

/**
 * A postgres.js client (pool) and where the layers' tables are.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgClient {
  readonly sql: postgres.Sql
  /** The schema (validated identifier). */
  readonly schema: string
  /** The prefix of every table name (validated identifier characters). */
  readonly tablePrefix: string
  /** The quoted, schema-qualified name of the table `name` (prefix added), for use with `sql.unsafe` or `sql(…)`. */
  readonly table: (name: string) => string
  /** The URL the pool was opened with, when it was (a LISTEN connection of its own needs it), or the user's client. */
  readonly url: string | undefined
}

/**
 * The PgClient service.
 *
 * @since 0.1.0
 * @category services
 */
export const PgClient: Context.Service<PgClient, PgClient> = Context.Service<PgClient>("annals/postgres/PgClient")

/**
 * Options of `make` and `layer`: a `url` (a pool is opened, of `max` connections, default 10) or an
 * existing postgres.js client `sql`; the `schema` (default `"public"`, created if missing) and the
 * `tablePrefix` (default `"annals_"`).
 *
 * @since 0.1.0
 * @category models
 */
export interface PgClientOptions {
  readonly url?: string | undefined
  readonly sql?: postgres.Sql | undefined
  readonly max?: number | undefined
  readonly schema?: string | undefined
  readonly tablePrefix?: string | undefined
}

/**
 * Opens the client: checks the options, opens the pool (closed when the scope closes) or takes the
 * given one, checks that the server answers, and creates the schema if it is missing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: PgClientOptions): Effect.Effect<PgClient, PgClientError, Scope.Scope> =>
  Effect.gen(function*() {
    const schema = options.schema ?? "public"
    const tablePrefix = options.tablePrefix ?? "annals_"
    const bad = (message: string) => new PgClientError({ method: "make", message: `PgClient: ${message}` })
    if ((options.url === undefined) === (options.sql === undefined)) return yield* bad("give either url or sql (one of them)")
    const problem = identifierProblem("schema", schema) ?? identifierProblem("tablePrefix", tablePrefix, { allowEmpty: true })
    if (problem !== undefined) return yield* bad(problem)
    const sql = options.sql ?? (yield* Effect.acquireRelease(
      Effect.try({
        try: () => postgres(options.url!, { max: options.max ?? 10, onnotice: () => {} }),
        // The driver's error may hold the URL itself (a TypeError's `input`, Deno's message): only its message is kept, redacted.
        catch: (cause) => bad(redactUrl(`cannot open a pool for ${options.url}: ${cause instanceof Error ? cause.message : String(cause)}`))
      }),
      (pool) => Effect.promise(() => pool.end({ timeout: 5 }))
    ))
    yield* Effect.tryPromise({
      try: () => sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`),
      catch: (cause) =>
        new PgClientError({ method: "make", message: `PgClient: cannot reach the server or create schema ${schema}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })
    }).pipe(Effect.catchIf((error) => isDuplicateSchema(error.cause), () => Effect.void))
    return {
      sql,
      schema,
      tablePrefix,
      table: (name) => `${quoteIdentifier(schema)}.${quoteIdentifier(`${tablePrefix}${name}`)}`,
      url: options.url
    }
  })

/** Two processes creating the schema at once: one of them gets a unique violation on the catalog. */
const isDuplicateSchema = (cause: unknown): boolean => {
  const code = (cause as { readonly code?: unknown } | undefined)?.code
  return code === "23505" || code === "42P06"
}

/**
 * The client as a layer (see `make`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: PgClientOptions): Layer.Layer<PgClient, PgClientError> => Layer.effect(PgClient, make(options))

/**
 * The client's options from `Config`: `DATABASE_URL` (required, redacted:
 * `postgres://user:password@host:port/database`), `ANNALS_PG_SCHEMA` (default `public`),
 * `ANNALS_PG_TABLE_PREFIX` (default `annals_`) and `ANNALS_PG_MAX`, the pool's size (≥ 1, default 10).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<PgClientOptions> = Config.all({
  url: Config.map(Config.Redacted("DATABASE_URL"), Redacted.value),
  schema: checkedString("ANNALS_PG_SCHEMA", (schema) => identifierProblem("schema", schema)),
  tablePrefix: checkedString("ANNALS_PG_TABLE_PREFIX", (prefix) => identifierProblem("tablePrefix", prefix, { allowEmpty: true })),
  max: integerAtLeast("ANNALS_PG_MAX", 1)
})

/**
 * `layer` with its options from `config` (the environment by default).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<PgClient, PgClientError | Config.ConfigError> = Layer.effect(PgClient, Effect.flatMap(config, make))
