/**
 * The file SnapshotStore over a directory (see `FileSnapshotStore`), with the two reads whose
 * interleaving with concurrent puts matters — listing a stream's directory and reading one of its
 * files — taken from `SnapshotReads`, so that tests can run a put between them.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as SecureRandom from "effect/crypto/SecureRandom"
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as NodePath from "node:path"
import { crc32 } from "../../internal/crc32.ts"
import * as Msgpack from "../../internal/msgpack.ts"
import { resolveKeep, scanProblem, snapshotProblem, streamArgsProblem } from "../../internal/snapshotChecks.ts"
import { failIf } from "../../internal/validate.ts"
import { type Snapshot, SnapshotStore, SnapshotStoreError } from "../../SnapshotStore.ts"
import type { FileSnapshotStoreOptions } from "../FileSnapshotStore.ts"
import { attempt as attemptFs, fsyncDirectory, isNotFound, removeQuietly, writeFileDurably } from "./fs.ts"

/** How the store lists a directory and reads a file. @internal */
export interface SnapshotReads {
  readonly readdir: (path: string) => Promise<Array<string>>
  readonly readFile: (path: string) => Promise<Uint8Array>
}

/** `SnapshotReads` on `node:fs`. @internal */
export const nodeSnapshotReads: SnapshotReads = {
  readdir: (path) => fs.readdir(path),
  readFile: async (path) => new Uint8Array(await fs.readFile(path))
}

const FORMAT = "annals.snapshot"
const FORMAT_VERSION = 1
const SUFFIX = ".snapshot"
const TEMP_SUFFIX = ".tmp"
const NAME = /^(\d{20})-(\d{20})\.snapshot$/

const hash = (...parts: ReadonlyArray<string>) => createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 40)
const fileName = (version: number, timestamp: number) =>
  `${String(version).padStart(20, "0")}-${String(timestamp).padStart(20, "0")}${SUFFIX}`

interface Entry {
  readonly version: number
  readonly timestamp: number
  readonly path: string
}

const encode = (snapshot: Snapshot): Uint8Array => {
  const header = [FORMAT, FORMAT_VERSION, snapshot.namespace, snapshot.id, snapshot.version, snapshot.seq, snapshot.timestamp, snapshot.schemaVersion]
  return Msgpack.pack([...header, snapshot.state, crc32(snapshot.state, crc32(Msgpack.pack(header)))])
}

/** Decodes a snapshot file; throws a message describing the damage. */
const decode = (bytes: Uint8Array): Snapshot => {
  const fields = Msgpack.unpack(bytes) as Array<unknown>
  if (!Array.isArray(fields) || fields.length !== 10 || fields[0] !== FORMAT) {
    throw new Error("it is not an annals snapshot file")
  }
  if (fields[1] !== FORMAT_VERSION) throw new Error(`its format version ${String(fields[1])} is not supported`)
  const state = fields[8]
  if (!(state instanceof Uint8Array)) throw new Error("its state is missing")
  const expected = crc32(state, crc32(Msgpack.pack(fields.slice(0, 8))))
  if (fields[9] !== expected) throw new Error("its checksum does not match")
  const [, , namespace, id, version, seq, timestamp, schemaVersion] = fields as [
    string, number, string, string, number, number, number, number
  ]
  return { namespace, id, version, seq, timestamp, schemaVersion, state: new Uint8Array(state) }
}

/**
 * Opens the store over `options.directory` with `reads`, removing temporary files a crash left; or,
 * `readOnly`, an existing directory as it is, its puts and deletes failing. @internal
 */
export const open = (
  options: FileSnapshotStoreOptions,
  reads: SnapshotReads,
  readOnly = false
): Effect.Effect<SnapshotStore, SnapshotStoreError> =>
  Effect.gen(function*() {
    const keep = resolveKeep(options)
    if (typeof keep === "string") return yield* new SnapshotStoreError({ method: "make", message: keep })
    const root = options.directory
    const attempt = <A>(method: string, what: string, run: () => Promise<A>) =>
      attemptFs(what, run, (message, cause) => new SnapshotStoreError({ method, message: `SnapshotStore ${message}`, cause }))
    const error = (method: string) => (message: string) => new SnapshotStoreError({ method, message })
    const namespaceDir = (namespace: string) => NodePath.join(root, hash(namespace))
    const streamDir = (namespace: string, id: string) => NodePath.join(namespaceDir(namespace), hash(namespace, id))
    const readdir = async (path: string) => {
      try {
        return await reads.readdir(path)
      } catch (cause) {
        if (isNotFound(cause)) return []
        throw cause
      }
    }
    /** The stream's snapshot files, youngest (highest version) first. */
    const entries = async (dir: string): Promise<Array<Entry>> => {
      const out: Array<Entry> = []
      for (const name of await readdir(dir)) {
        const match = NAME.exec(name)
        if (match !== null) out.push({ version: Number(match[1]), timestamp: Number(match[2]), path: NodePath.join(dir, name) })
      }
      return out.sort((a, b) => b.version - a.version)
    }
    /**
     * The first readable snapshot among the files of `dir` that `select` keeps (youngest first) whose
     * namespace and id match; damaged files are reported and skipped. A file that is gone when read was
     * removed after the listing, by a put that wrote a newer snapshot (retention) or by a delete: the
     * directory is listed again, since skipping to an older file (or to none) would hide the snapshot
     * that replaced it. A name that is listed again but still cannot be read is skipped.
     */
    const firstReadable = (
      method: string,
      dir: string,
      select: (all: ReadonlyArray<Entry>) => ReadonlyArray<Entry>,
      namespace: string,
      id?: string
    ) =>
      Effect.gen(function*() {
        const vanished = new Set<string>()
        listing: for (;;) {
          const candidates = select(yield* attempt(method, `list ${dir}`, () => entries(dir)))
          for (const entry of candidates) {
            const bytes = yield* attempt(method, `read ${entry.path}`, async () => {
              try {
                return await reads.readFile(entry.path)
              } catch (cause) {
                if (isNotFound(cause)) return undefined
                throw cause
              }
            })
            if (bytes === undefined) {
              if (vanished.has(entry.path)) continue
              vanished.add(entry.path)
              continue listing
            }
            try {
              const snapshot = decode(bytes)
              if (snapshot.namespace === namespace && (id === undefined || snapshot.id === id)) return Option.some(snapshot)
              yield* Effect.logWarning(`Snapshot file ${entry.path} belongs to another stream (hash collision); skipped`)
            } catch (cause) {
              yield* Effect.logWarning(
                `Snapshot file ${entry.path} is damaged (${cause instanceof Error ? cause.message : String(cause)}); ` +
                  `skipped, the state will be rebuilt from an older snapshot or the journal`
              )
            }
          }
          return Option.none<Snapshot>()
        }
      })

    const get: SnapshotStore["get"] = (namespace, id, criteria) =>
      Effect.gen(function*() {
        yield* failIf(streamArgsProblem("get", namespace, id, criteria), error("get"))
        const maxVersion = criteria?.maxVersion ?? Number.MAX_SAFE_INTEGER
        const maxTimestamp = criteria?.maxTimestamp ?? Number.MAX_SAFE_INTEGER
        const matching = (all: ReadonlyArray<Entry>) => all.filter((e) => e.version <= maxVersion && e.timestamp <= maxTimestamp)
        return yield* firstReadable("get", streamDir(namespace, id), matching, namespace, id)
      })

    const scan: SnapshotStore["scan"] = (namespace) =>
      Stream.unwrap(Effect.gen(function*() {
        yield* failIf(scanProblem(namespace), error("scan"))
        const dir = namespaceDir(namespace)
        const streams = yield* attempt("scan", `list ${dir}`, () => readdir(dir))
        const latest: Array<Snapshot> = []
        for (const stream of streams) {
          const found = yield* firstReadable("scan", NodePath.join(dir, stream), (all) => all, namespace)
          if (Option.isSome(found)) latest.push(found.value)
        }
        latest.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        return Stream.fromArray(latest)
      }))

    const refuse = (method: string) =>
      Effect.fail(new SnapshotStoreError({ method, message: `The snapshot store in ${root} is open read-only: ${method} is refused` }))
    if (readOnly) {
      yield* attempt("make", `open ${root}`, () => reads.readdir(root))
      return SnapshotStore.of({ get, put: () => refuse("put"), delete: () => refuse("delete"), scan })
    }
    // Temporary files are only ever left by a crash between write and rename.
    yield* attempt("make", `clean up ${root}`, async () => {
      await fs.mkdir(root, { recursive: true })
      for (const ns of await readdir(root)) {
        for (const stream of await readdir(NodePath.join(root, ns))) {
          const dir = NodePath.join(root, ns, stream)
          for (const name of await readdir(dir)) if (name.endsWith(TEMP_SUFFIX)) await removeQuietly(NodePath.join(dir, name))
        }
      }
    })

    return SnapshotStore.of({
      get,
      put: (snapshot) =>
        Effect.gen(function*() {
          yield* failIf(snapshotProblem(snapshot), error("put"))
          const dir = streamDir(snapshot.namespace, snapshot.id)
          const bytes = encode(snapshot)
          const temp = NodePath.join(dir, `${SecureRandom.uuidV4Unsafe()}${TEMP_SUFFIX}`)
          yield* attempt("put", `write a snapshot of ${snapshot.namespace}/${snapshot.id} in ${dir}`, async () => {
            const existing = await entries(dir)
            if (existing.length === 0) {
              await fs.mkdir(dir, { recursive: true })
              await fsyncDirectory(NodePath.dirname(dir))
              await fsyncDirectory(root)
            }
            try {
              const name = fileName(snapshot.version, snapshot.timestamp)
              await writeFileDurably(temp, bytes)
              await fs.rename(temp, NodePath.join(dir, name))
              // Whatever else is at this version is the snapshot being replaced.
              for (const old of existing) {
                if (old.version === snapshot.version && NodePath.basename(old.path) !== name) await removeQuietly(old.path)
              }
              // Listed again after the rename, so concurrent puts to the stream see each other's files.
              for (const old of (await entries(dir)).slice(keep)) await removeQuietly(old.path)
              await fsyncDirectory(dir)
            } finally {
              await removeQuietly(temp)
            }
          })
        }),
      delete: (namespace, id) =>
        Effect.gen(function*() {
          yield* failIf(streamArgsProblem("delete", namespace, id), error("delete"))
          const dir = streamDir(namespace, id)
          yield* attempt("delete", `remove ${dir}`, async () => {
            await fs.rm(dir, { recursive: true, force: true })
            await fsyncDirectory(namespaceDir(namespace)).catch((cause) => {
              if (!isNotFound(cause)) throw cause
            })
          })
        }),
      scan
    })
  })
