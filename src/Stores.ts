/**
 * The storage of an application chosen by one URL: `memory:`, a directory (`./data`), `postgres://…`,
 * `redis://…` or `nats://…` for the Journal, SnapshotStore and CursorStore, and `s3://bucket/prefix`,
 * a directory or `memory:` for the Archive. `layerConfig` reads the URLs from `ANNALS_STORE` and
 * `ANNALS_ARCHIVE`, so one environment variable moves an application between backends with no
 * change to its code; the `annals` command line opens stores the same way.
 *
 * A backend's module is imported only when a URL names it, so an application on the file layers
 * never loads the PostgreSQL, Redis, NATS or S3 clients.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Archive, layerMemory as archiveMemory } from "./Archive.ts"
import { CursorStore, layerMemory as cursorsMemory } from "./CursorStore.ts"
import type { TaggedErrorClass } from "./internal/errors.ts"
import { redactUrl } from "./internal/redact.ts"
import { Journal, layerMemory as journalMemory } from "./Journal.ts"
import { layerMemory as snapshotsMemory, SnapshotStore } from "./SnapshotStore.ts"

/**
 * The fields of a `StoresError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface StoresErrorFields {
  readonly method: string
  /** The URL (its password replaced by `***`). */
  readonly url: string
  readonly message: string
  readonly cause?: unknown
}

const StoresErrorBase: TaggedErrorClass<"StoresError", StoresErrorFields> = Data.TaggedError("StoresError")

/**
 * A store URL was malformed or names no backend, or the store it names could not be opened (the
 * backend's error is the `cause`, and its message is repeated).
 *
 * @since 0.1.0
 * @category errors
 */
export class StoresError extends StoresErrorBase {}

/**
 * The three services a store URL provides.
 *
 * @since 0.1.0
 * @category models
 */
export type Stores = Journal | SnapshotStore | CursorStore

/**
 * Options of `layerUrl`.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoresOptions {
  /**
   * Open without writing: the file layers take no lock and change nothing on disk (their writer may
   * keep running); writes fail. Other backends are shared by many writers and open as usual.
   */
  readonly readOnly?: boolean | undefined
}

/**
 * The kind of backend a URL names.
 *
 * @since 0.1.0
 * @category models
 */
export type Backend = "memory" | "file" | "postgres" | "redis" | "nats" | "s3"

const SCHEME = /^([a-z][a-z0-9+.-]*):/i

/**
 * The backend a URL names: `memory:`; `postgres:`/`postgresql:`; `redis:`/`rediss:`; `nats:`/`tls:`;
 * `s3:`; `file:` or anything without a scheme is a directory. `undefined` for another scheme.
 *
 * @since 0.1.0
 * @category urls
 */
export const backendOf = (url: string): Backend | undefined => {
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase()
  // A Windows drive letter (`C:\data`) is a path, not a scheme.
  if (scheme === undefined || (scheme.length === 1 && /^[a-z]:[\\/]/i.test(url))) return "file"
  switch (scheme) {
    case "memory":
      return "memory"
    case "file":
      return "file"
    case "postgres":
    case "postgresql":
      return "postgres"
    case "redis":
    case "rediss":
      return "redis"
    case "nats":
    case "tls":
      return "nats"
    case "s3":
      return "s3"
    default:
      return undefined
  }
}

/**
 * The directory a file URL names (`file:///srv/data` or a plain path).
 *
 * @since 0.1.0
 * @category urls
 */
export const directoryOf = (url: string): string => {
  if (!url.toLowerCase().startsWith("file:")) return url
  try {
    return decodeURIComponent(new URL(url).pathname)
  } catch {
    return url // not a well-formed file URL: opening it names it as it was given
  }
}

const failure = (method: string, url: string, message: string, cause?: unknown) =>
  new StoresError({ method, url: redactUrl(url), message, ...(cause !== undefined ? { cause } : {}) })

/** Builds `layer`, turning its failure into a `StoresError` that names the URL. */
const opening = <A, E extends { readonly message?: string }>(
  method: string,
  url: string,
  layer: Layer.Layer<A, E>
): Layer.Layer<A, StoresError> =>
  Layer.effectContext(
    Layer.build(layer).pipe(
      Effect.mapError((error) => failure(method, url, `Cannot open ${redactUrl(url)}: ${error.message ?? String(error)}`, error))
    )
  )

/** Imports a backend's module, failing with a `StoresError` (the module or its client may be missing). */
const load = <M>(method: string, url: string, module: () => Promise<M>): Effect.Effect<M, StoresError> =>
  Effect.tryPromise({
    try: module,
    catch: (cause) => failure(method, url, `Cannot load the module for ${redactUrl(url)}: ${String(cause)}`, cause)
  })

/** `f`, which parses `url`, with its failure (a malformed URL) a `StoresError`. */
const parsing = <A>(method: string, url: string, f: () => A): Effect.Effect<A, StoresError> =>
  Effect.try({ try: f, catch: () => failure(method, url, `${redactUrl(url)} is not a well-formed URL`) })

/** The URL without the query parameters `names`, and their values. */
const takeParams = (url: string, names: ReadonlyArray<string>) => {
  const parsed = new URL(url)
  const values: Record<string, string | undefined> = {}
  for (const name of names) {
    values[name] = parsed.searchParams.get(name) ?? undefined
    parsed.searchParams.delete(name)
  }
  return { url: parsed.toString(), values }
}

const storesOf = (url: string, options: StoresOptions): Effect.Effect<Layer.Layer<Stores, StoresError>, StoresError> => {
  const method = "layerUrl"
  switch (backendOf(url)) {
    case "memory":
      return Effect.succeed(opening(method, url, Layer.mergeAll(journalMemory, snapshotsMemory(), cursorsMemory)))
    case "file":
      return Effect.map(load(method, url, () => import("./file/index.ts")), (file) => {
        const directory = directoryOf(url)
        return opening(
          method,
          url,
          options.readOnly === true ? file.FileStores.layerReadOnly(directory) : file.FileStores.layer({ directory })
        )
      })
    case "postgres":
      return Effect.flatMap(load(method, url, () => import("./postgres/index.ts")), (pg) => parsing(method, url, () => {
        const { url: server, values } = takeParams(url, ["schema", "tablePrefix"])
        const client = pg.PgClient.layer({ url: server, schema: values.schema, tablePrefix: values.tablePrefix })
        return opening(
          method,
          url,
          Layer.mergeAll(pg.PgJournal.layerClient(), pg.PgSnapshotStore.layerClient(), pg.PgCursorStore.layerClient).pipe(
            Layer.provide(client)
          )
        )
      }))
    case "redis":
      return Effect.flatMap(load(method, url, () => import("./redis/index.ts")), (redis) =>
        parsing(method, url, () => {
          const { url: server, values } = takeParams(url, ["prefix"])
          return opening(method, url, redis.RedisStores.layer({ url: server, prefix: values.prefix }))
        }))
    case "nats":
      return Effect.flatMap(load(method, url, () => import("./nats/index.ts")), (nats) =>
        parsing(method, url, () => {
          const { url: server, values } = takeParams(url, ["prefix"])
          return opening(method, url, nats.NatsStores.layer({ servers: server, prefix: values.prefix }))
        }))
    case "s3":
      return Effect.fail(failure(method, url, `${redactUrl(url)} names an archive, not a store of journal, snapshots and cursors`))
    case undefined:
      return Effect.fail(failure(method, url, `${redactUrl(url)}: unknown scheme (expected memory:, a directory, postgres://, redis:// or nats://)`))
  }
}

/**
 * The Journal, SnapshotStore and CursorStore of the store `url` names:
 * - `memory:` — the in-memory layers (gone when the layer closes);
 * - a directory (`./data`, `/srv/data`, `file:///srv/data`) — the file layers in its `journal/`,
 *   `snapshots/` and `cursors/` subdirectories;
 * - `postgres://user:password@host/db?schema=annals&tablePrefix=app_` — the PostgreSQL layers on one
 *   client (`schema` and `tablePrefix` are taken out of the URL before it reaches the driver);
 * - `redis://host:6379?prefix=app` — the Redis layers; `nats://host:4222?prefix=app` — the NATS layers.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerUrl = (url: string, options: StoresOptions = {}): Layer.Layer<Stores, StoresError> =>
  Layer.unwrap(storesOf(url, options))

const archiveOf = (url: string, readOnly: boolean): Effect.Effect<Layer.Layer<Archive, StoresError>, StoresError> => {
  const method = "layerArchiveUrl"
  switch (backendOf(url)) {
    case "memory":
      return Effect.succeed(opening(method, url, archiveMemory()))
    case "file":
      return Effect.map(
        load(method, url, () => import("./file/index.ts")),
        (file) => {
          const options = { directory: directoryOf(url) }
          return opening(method, url, readOnly ? file.DirectoryArchive.layerReadOnly(options) : file.DirectoryArchive.layer(options))
        }
      )
    case "s3":
      return Effect.gen(function*() {
        const s3 = yield* load(method, url, () => import("./s3/index.ts"))
        const [parsed, prefix] = yield* parsing(method, url, () => {
          const parsed = new URL(url)
          return [parsed, decodeURIComponent(parsed.pathname.replace(/^\//, ""))] as const
        })
        const clientConfig = yield* Effect.mapError(
          s3.S3Archive.clientConfig,
          (error) => failure(method, url, `Invalid S3 settings: ${error.message}`, error)
        )
        return opening(method, url, s3.S3Archive.layer({ bucket: parsed.hostname, prefix, clientConfig }))
      })
    default:
      return Effect.fail(failure(method, url, `${redactUrl(url)}: not an archive URL (expected s3://bucket/prefix, a directory or memory:)`))
  }
}

/**
 * The Archive `url` names: `s3://bucket/prefix` (endpoint, region and credentials from the usual AWS
 * variables, see `S3Archive.clientConfig`), a directory, or `memory:`. With `readOnly`, a directory
 * is neither created nor written (`put` fails).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerArchiveUrl = (url: string, options: StoresOptions = {}): Layer.Layer<Archive, StoresError> =>
  Layer.unwrap(archiveOf(url, options.readOnly === true))

/**
 * The URLs `layerConfig` reads: `ANNALS_STORE` (default: the directory `ANNALS_DATA_DIR`, else
 * `store`, else `data` — the file layers in `./data`) and `ANNALS_ARCHIVE` (default:
 * `<directory>/archive` for a file store, the memory archive for `memory:`; a server has none).
 *
 * @since 0.1.0
 * @category config
 */
export const config = (store = "data"): Config.Config<{ readonly store: string; readonly archive: Option.Option<string> }> =>
  Config.all({
    store: Config.String("ANNALS_STORE").pipe(
      Config.orElse(() => Config.String("ANNALS_DATA_DIR")),
      Config.withDefault(store)
    ),
    archive: Config.option(Config.String("ANNALS_ARCHIVE"))
  })

/**
 * The archive URL of `store` when none is configured: the store's own `archive/` directory for a
 * file store and the memory archive for `memory:`; `undefined` for a server.
 *
 * @since 0.1.0
 * @category urls
 */
export const defaultArchiveUrl = (store: string): string | undefined => {
  const backend = backendOf(store)
  return backend === "file" ? `${directoryOf(store)}/archive` : backend === "memory" ? "memory:" : undefined
}

/**
 * The stores named by `ANNALS_STORE` and the Archive named by `ANNALS_ARCHIVE` (see `config`;
 * `options.store` is the store when `ANNALS_STORE` is unset). Unset, the application runs on the file
 * layers in `./data`; `ANNALS_STORE=postgres://…` with `ANNALS_ARCHIVE=s3://bucket/journal/` moves
 * it to PostgreSQL and S3 with no change to its code.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: { readonly store?: string | undefined } = {}
): Layer.Layer<Stores | Archive, StoresError | Config.ConfigError> =>
  Layer.unwrap(
    Effect.gen(function*() {
      const { archive, store } = yield* config(options.store)
      const archiveUrl = Option.getOrUndefined(archive) ?? defaultArchiveUrl(store)
      if (archiveUrl === undefined) {
        return yield* failure(
          "layerConfig",
          store,
          `ANNALS_STORE is ${redactUrl(store)}, which has no archive of its own: set ANNALS_ARCHIVE (s3://bucket/prefix or a directory)`
        )
      }
      return Layer.merge(layerUrl(store), layerArchiveUrl(archiveUrl))
    })
  )
