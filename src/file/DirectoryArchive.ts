/**
 * An Archive in a local directory: each segment object is one file named by its key
 * (`{prefix}{startSeq:020}-{endSeq:020}.msgpack`; a `/` in the prefix makes subdirectories). Usable
 * without S3, e.g. on a mounted backup volume. Objects are written to a temporary file, fsynced,
 * then hard-linked to their name — an atomic create that fails if the name is taken — so a crash
 * never leaves a partial object, and a second writer never replaces one. `layerReadOnly` reads an
 * existing directory (the CLI) and never writes to it.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SecureRandom from "effect/crypto/SecureRandom"
import * as NodePath from "node:path"
import { Archive, ArchiveError, type ArchiveOptions, make, type ObjectStore } from "../Archive.ts"
import { layerFromConfig, optional } from "../internal/config.ts"
import { dataDirectory } from "./internal/config.ts"
import { attempt as attemptFs, fsyncDirectory, isNotFound, removeQuietly, writeFileDurably } from "./internal/fs.ts"
import * as fs from "node:fs/promises"

/**
 * Options of the directory archive.
 *
 * @since 0.1.0
 * @category models
 */
export interface DirectoryArchiveOptions extends ArchiveOptions {
  /** The directory objects are stored in; created if missing. */
  readonly directory: string
}

const TEMP_SUFFIX = ".tmp"

const archiveFailure = (method: string, key: string | undefined, message: string, cause: unknown) =>
  new ArchiveError({ method, message: `Archive ${message}`, ...(key !== undefined ? { key } : {}), cause })

/**
 * An `ObjectStore` over the files below `directory`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeObjectStore = (directory: string): ObjectStore => {
  const pathOf = (key: string) => NodePath.join(directory, ...key.split("/"))
  const attempt = <A>(method: string, key: string | undefined, what: string, run: () => Promise<A>) =>
    attemptFs(what, run, (message, cause) => archiveFailure(method, key, message, cause))

  return {
    get: (key) =>
      attempt("get", key, `read ${pathOf(key)}`, async () => {
        try {
          return new Uint8Array(await fs.readFile(pathOf(key)))
        } catch (cause) {
          if (isNotFound(cause)) return undefined
          throw cause
        }
      }),
    putIfAbsent: (key, bytes) =>
      attempt("put", key, `write ${pathOf(key)}`, async () => {
        const target = pathOf(key)
        const parent = NodePath.dirname(target)
        await fs.mkdir(parent, { recursive: true })
        const temp = `${target}.${SecureRandom.uuidV4Unsafe()}${TEMP_SUFFIX}`
        try {
          await writeFileDurably(temp, bytes)
          try {
            await fs.link(temp, target)
          } catch (cause) {
            if ((cause as NodeJS.ErrnoException)?.code === "EEXIST") return false
            throw cause
          }
          await fsyncDirectory(parent)
          return true
        } finally {
          await removeQuietly(temp)
        }
      }),
    list: (prefix) =>
      attempt("list", undefined, `list ${directory}`, async () => {
        const slash = prefix.lastIndexOf("/")
        const folder = prefix.slice(0, slash + 1)
        let names: Array<string>
        try {
          names = await fs.readdir(pathOf(folder === "" ? "." : folder))
        } catch (cause) {
          if (isNotFound(cause)) return []
          throw cause
        }
        const out: Array<{ key: string; size: number }> = []
        for (const name of names) {
          const key = folder + name
          if (!key.startsWith(prefix) || name.endsWith(TEMP_SUFFIX)) continue
          try {
            const stat = await fs.stat(pathOf(key))
            if (stat.isFile()) out.push({ key, size: stat.size })
          } catch (cause) {
            if (!isNotFound(cause)) throw cause
          }
        }
        return out
      })
  }
}

/**
 * An Archive storing its objects as files below `options.directory`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: DirectoryArchiveOptions): Layer.Layer<Archive, ArchiveError> =>
  Layer.effect(
    Archive,
    Effect.flatMap(
      attemptFs(
        `create directory ${options.directory}`,
        () => fs.mkdir(options.directory, { recursive: true }),
        (message, cause) => archiveFailure("layer", undefined, message, cause)
      ),
      () => make(makeObjectStore(options.directory), options)
    )
  )

/**
 * The options from `Config`: `ANNALS_ARCHIVE_DIR` (default `archive` below `ANNALS_DATA_DIR`, whose
 * default is `data`), `ANNALS_ARCHIVE_PREFIX` (default `""`) and `ANNALS_ARCHIVE_COMPRESSION`
 * (`none`, the default, or `gzip`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<DirectoryArchiveOptions> = Config.all({
  directory: dataDirectory("ANNALS_ARCHIVE_DIR", "archive"),
  prefix: optional(Config.String("ANNALS_ARCHIVE_PREFIX")),
  compression: optional(Config.Literals(["none", "gzip"], "ANNALS_ARCHIVE_COMPRESSION"))
})

/**
 * The directory archive with its options from `config` (the environment by default); `overrides`
 * replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (overrides?: Partial<DirectoryArchiveOptions>): Layer.Layer<Archive, ArchiveError | Config.ConfigError> =>
  layerFromConfig(config, layer, overrides)

/**
 * The Archive in the existing `options.directory`, read-only: `list` and `get` read the files as
 * they are; `put` fails with an `ArchiveError`, and nothing on disk is created or changed (a missing
 * directory fails with an `ArchiveError` naming it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerReadOnly = (options: DirectoryArchiveOptions): Layer.Layer<Archive, ArchiveError> =>
  Layer.effect(
    Archive,
    Effect.flatMap(
      attemptFs(`open directory ${options.directory}`, () => fs.readdir(options.directory), (message, cause) =>
        archiveFailure("layer", undefined, message, cause)),
      () =>
        make({
          ...makeObjectStore(options.directory),
          putIfAbsent: (key) =>
            Effect.fail(archiveFailure("put", key, `in ${options.directory} is open read-only: cannot put ${key}`, undefined))
        }, options)
    )
  )
