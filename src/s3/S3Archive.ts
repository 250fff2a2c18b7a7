/**
 * The Archive on S3 and S3-compatible stores (AWS S3, Cloudflare R2, MinIO, Ceph …) through
 * `@aws-sdk/client-s3`: segment objects under `{prefix}{startSeq:020}-{endSeq:020}.msgpack`
 * (`.msgpack.gz` with gzip), the format, checksums and no-overwrite rule of `Archive.make`.
 *
 * A second writer on the same bucket and prefix is detected by the conditional create
 * (`If-None-Match: *`): it never overwrites, and a different object under a taken key fails naming
 * the key and both writers. Listing pages through any number of objects. Every call is aborted
 * when its fiber is interrupted or after `timeoutMs`. Errors name the operation, the bucket and the
 * key with the service's error name, status and request id — never credentials.
 *
 * @since 0.1.0
 */
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Archive, ArchiveError, type ArchiveOptions, make as makeArchive, type ObjectStore } from "../Archive.ts"
import { integerProblem } from "../internal/validate.ts"
import { makeS3ObjectStore } from "./internal/s3ObjectStore.ts"

/**
 * Options of the S3 Archive: the bucket, and either a client of the application's (left open) or
 * a configuration to make one with (destroyed when the layer closes).
 *
 * @since 0.1.0
 * @category models
 */
export interface S3ArchiveOptions extends ArchiveOptions {
  readonly bucket: string
  /** The application's client; the layer neither configures nor destroys it. */
  readonly client?: S3Client | undefined
  /**
   * A configuration for a client of the layer's own. Checksums default to `WHEN_REQUIRED` (request
   * and response), which every S3-compatible server accepts; set them here to change that.
   */
  readonly clientConfig?: S3ClientConfig | undefined
  /** The longest one S3 call may take before it is aborted and fails (default 30,000 ms). */
  readonly timeoutMs?: number | undefined
}

/** S3's bucket name rules (3–63 characters: lowercase letters, digits, dots and hyphens). */
const BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

const optionError = (message: string) => new ArchiveError({ method: "make", message: `S3Archive option ${message}` })

/**
 * The `ObjectStore` of a bucket, for building an Archive with other options (or for reading its
 * objects in tools).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeObjectStore = (client: S3Client, bucket: string, timeoutMs = 30_000): ObjectStore =>
  makeS3ObjectStore({ client, bucket, timeoutMs })

/**
 * Builds the Archive; a client made from `clientConfig` is destroyed when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: S3ArchiveOptions): Effect.Effect<Archive, ArchiveError, Scope.Scope> =>
  Effect.gen(function*() {
    if (typeof options.bucket !== "string" || !BUCKET_PATTERN.test(options.bucket)) {
      return yield* optionError(`bucket ${JSON.stringify(options.bucket)} is not a valid S3 bucket name`)
    }
    const timeoutMs = options.timeoutMs ?? 30_000
    const badTimeout = integerProblem("timeoutMs", timeoutMs, 1)
    if (badTimeout !== undefined) return yield* optionError(badTimeout)
    if (options.client !== undefined && options.clientConfig !== undefined) {
      return yield* optionError("client and clientConfig exclude each other: pass one")
    }
    const client = options.client ?? (yield* Effect.acquireRelease(
      Effect.sync(() =>
        new S3Client({ requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED", ...options.clientConfig })
      ),
      (made) => Effect.sync(() => made.destroy())
    ))
    return yield* makeArchive(makeS3ObjectStore({ client, bucket: options.bucket, timeoutMs }), options)
  })

/**
 * The Archive as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: S3ArchiveOptions): Layer.Layer<Archive, ArchiveError> => Layer.effect(Archive, make(options))

/**
 * The client configuration the environment gives, under the usual AWS names: `AWS_ENDPOINT_URL_S3`
 * or `AWS_ENDPOINT_URL` (for R2, MinIO …; path-style addressing then, unless
 * `S3_FORCE_PATH_STYLE=false`), `AWS_REGION` or `AWS_DEFAULT_REGION` (default `us-east-1`), and
 * `AWS_ACCESS_KEY_ID` with `AWS_SECRET_ACCESS_KEY` (redacted; without them the SDK's own chain —
 * profiles, instance roles — finds credentials).
 *
 * @since 0.1.0
 * @category config
 */
export const clientConfig: Config.Config<S3ClientConfig> = Config.all({
  endpoint: Config.option(Config.String("AWS_ENDPOINT_URL_S3").pipe(Config.orElse(() => Config.String("AWS_ENDPOINT_URL")))),
  forcePathStyle: Config.option(Config.Boolean("S3_FORCE_PATH_STYLE")),
  region: Config.String("AWS_REGION").pipe(Config.orElse(() => Config.String("AWS_DEFAULT_REGION")), Config.withDefault("us-east-1")),
  accessKeyId: Config.option(Config.String("AWS_ACCESS_KEY_ID")),
  secretAccessKey: Config.option(Config.Redacted("AWS_SECRET_ACCESS_KEY"))
}).pipe(Config.map((c): S3ClientConfig => ({
  region: c.region,
  ...Option.match(c.endpoint, {
    onNone: () => ({}),
    onSome: (endpoint) => ({ endpoint, forcePathStyle: Option.getOrElse(c.forcePathStyle, () => true) })
  }),
  ...(Option.isSome(c.accessKeyId) && Option.isSome(c.secretAccessKey)
    ? { credentials: { accessKeyId: c.accessKeyId.value, secretAccessKey: Redacted.value(c.secretAccessKey.value) } }
    : {})
})))

/**
 * The options the environment gives: `S3_BUCKET` (required), `S3_PREFIX` (default `""`),
 * `S3_COMPRESSION` (`none` or `gzip`), and the client's settings from `clientConfig`.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<S3ArchiveOptions> = Config.all({
  bucket: Config.String("S3_BUCKET"),
  prefix: Config.String("S3_PREFIX").pipe(Config.withDefault("")),
  compression: Config.Literals(["none", "gzip"], "S3_COMPRESSION").pipe(Config.withDefault("none" as const)),
  clientConfig
})

/**
 * The Archive configured from the environment (see `config`); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (overrides?: Partial<S3ArchiveOptions>): Layer.Layer<Archive, ArchiveError | Config.ConfigError> =>
  Layer.effect(Archive, Effect.flatMap(config, (options) => make({ ...options, ...overrides })))

/**
 * The S3 Archive when `S3_BUCKET` is set, else `fallback` (say, a `DirectoryArchive`): setting that one
 * variable moves an application's archive to S3 with no change to its code.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfigOrElse = <E, R>(
  fallback: Layer.Layer<Archive, E, R>,
  overrides?: Partial<S3ArchiveOptions>
): Layer.Layer<Archive, ArchiveError | Config.ConfigError | E, R> =>
  Layer.unwrap(Effect.map(
    Config.option(Config.String("S3_BUCKET")),
    (bucket): Layer.Layer<Archive, ArchiveError | Config.ConfigError | E, R> => Option.isSome(bucket) ? layerConfig(overrides) : fallback
  ))
