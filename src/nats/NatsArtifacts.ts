/**
 * Projection export artifacts in a NATS JetStream object store: `NatsArtifacts.make({ prefix })` is
 * the `ArtifactStore` (annals) of the object store `<prefix>_artifacts` (created if missing), over the
 * `NatsClient` in context, for `exportState({ artifacts, round })`, `run(fold, { exports: { artifacts,
 * everyMs } })` and `Projection.importLatest(fold, { artifacts })`. With the NATS CursorStore, the
 * export lease that lets one replica export per round is a KV lease of the same server.
 *
 * - Objects are named like the directory layout, `<name as hex>@<version>/<round, 20 digits>/<file>`:
 *   the data file `state.msgpack`, then `MANIFEST.json`, written last. A round is complete once its
 *   manifest object is there; a crash between the two leaves data objects without a manifest, which
 *   readers never take and the next export removes (holding the export lease).
 * - Every object is created only where there is none: the put expects the name's metadata subject to
 *   be at the revision it read (nothing, or a delete marker), so no writer ever replaces another's
 *   object — a writer whose lease lapsed cannot overwrite the artifact of a round another replica
 *   completed, and of two writers of one round at most one writes the manifest.
 * - A writer that stops before it writes the manifest deletes the data objects it wrote; one whose
 *   manifest write failed leaves them (the manifest may have been stored with its reply lost), and
 *   the next export removes them when there is no manifest.
 * - Reads check each object's digest (the client) and each data file's size and SHA-256 against the
 *   manifest (the Projection runtime); a damaged object is an error naming it and the bucket.
 * - An existing object store is used as it is, but refused when it is weaker than asked (memory when
 *   file was asked, fewer replicas), sealed, a mirror, or has a max age, a per-subject limit or a size
 *   limit that discards old messages (each would drop parts of artifacts), naming the setting.
 *
 * @since 0.1.0
 */
import type { ObjectStore } from "@nats-io/obj"
import * as Effect from "effect/Effect"
import { type ArtifactStore, ArtifactStoreError, type RoundRef, type RoundWriter } from "../ArtifactStore.ts"
import { MANIFEST_FILE, projectionStem, roundName, roundOf } from "../internal/projectionArtifactFormat.ts"
import { bucketProblem, type NatsStorageOptions, objectStoreProblem, openObjectStore, resolveStoreOptions } from "./internal/buckets.ts"
import { describeNatsFailure, isWrongLastSequence } from "./internal/errors.ts"
import { storeNames } from "./internal/names.ts"
import { deleteObject, readObject } from "./internal/objects.ts"
import * as Client from "./NatsClient.ts"

/**
 * Options of `make`: the store `prefix`, and the `replicas` and `storage` of the object store when
 * this store creates it.
 *
 * @since 0.1.0
 * @category models
 */
export interface NatsArtifactsOptions extends NatsStorageOptions {
  /** Isolates the object store (`<prefix>_artifacts`); default `"annals"`. */
  readonly prefix?: string | undefined
}

/** The object name prefix of round `ref`. */
const roundPrefix = (ref: RoundRef): string => `${projectionStem(ref.projection, ref.version)}/${roundName(ref.round)}/`

/** Creates the object `name` holding `bytes` unless one is there: `false` then, also when another writer created it meanwhile. */
const createObject = async (store: ObjectStore, name: string, bytes: Uint8Array): Promise<boolean> => {
  const info = await store.info(name)
  if (info !== null && !info.deleted) return false
  try {
    await store.putBlob({ name }, bytes, { previousRevision: info?.revision ?? 0 })
    return true
  } catch (cause) {
    if (isWrongLastSequence(cause)) return false
    throw cause
  }
}

/** The file names of every round of `projection` at `version` in `store`, by round. */
const roundsOf = async (store: ObjectStore, projection: string, version: number): Promise<Map<number, Array<string>>> => {
  const stem = `${projectionStem(projection, version)}/`
  const rounds = new Map<number, Array<string>>()
  for (const { name } of await store.list()) {
    const rest = name.startsWith(stem) ? name.slice(stem.length) : ""
    const slash = rest.indexOf("/")
    const round = slash < 0 ? undefined : roundOf(rest.slice(0, slash))
    if (round === undefined) continue
    rounds.set(round, [...(rounds.get(round) ?? []), rest.slice(slash + 1)])
  }
  return rounds
}

/**
 * The artifact store of the object store `<prefix>_artifacts` over the `NatsClient` in context,
 * creating it if missing and checking it when it exists.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: NatsArtifactsOptions = {}): Effect.Effect<ArtifactStore, ArtifactStoreError, Client.NatsClient> =>
  Effect.gen(function*() {
    const resolved = resolveStoreOptions(options)
    if (typeof resolved === "string") return yield* Effect.fail(new ArtifactStoreError({ method: "make", message: `NatsArtifacts: ${resolved}` }))
    const { prefix, settings } = resolved
    const client = yield* Client.NatsClient
    const bucket = storeNames(prefix).artifactStore
    const request = <A>(method: string, what: string, run: () => Promise<A>) =>
      Effect.tryPromise({
        try: run,
        catch: (cause) =>
          new ArtifactStoreError({
            method,
            message: `NatsArtifacts: cannot ${what} (NATS object store ${bucket} at ${client.servers}): ${describeNatsFailure(cause)}`,
            cause
          })
      })
    const { store, config } = yield* request("make", "open the artifact object store", () => openObjectStore(client.jetstream, bucket, settings))
    const what = `artifact object store ${bucket}`
    const refused = bucketProblem(what, config, [`$O.${bucket}.C.>`, `$O.${bucket}.M.>`], settings) ??
      objectStoreProblem(what, config, "artifacts that imports read")
    if (refused !== undefined) return yield* Effect.fail(new ArtifactStoreError({ method: "make", message: `NatsArtifacts: ${refused}` }))

    const create = (method: string, name: string, bytes: Uint8Array) => request(method, `write the object ${name}`, () => createObject(store, name, bytes))
    const writeRound = (ref: RoundRef) =>
      Effect.map(
        Effect.acquireRelease(
          Effect.sync(() => ({ written: new Array<string>(), manifestTried: false })),
          (round) =>
            round.manifestTried ? Effect.void : Effect.forEach(round.written, (name) =>
              Effect.ignore(request("writeRound", `delete the object ${name}`, () => deleteObject(store, name))), { discard: true })
        ),
        (round): RoundWriter => ({
          writeFile: (file, bytes) => {
            const name = roundPrefix(ref) + file
            return Effect.flatMap(create("writeFile", name, bytes), (created) =>
              created
                ? Effect.sync(() => void round.written.push(name))
                : Effect.fail(new ArtifactStoreError({
                  method: "writeFile",
                  message: `NatsArtifacts: the object ${name} of ${bucket} exists already: another export of round ${ref.round} wrote it (the next export removes what a crashed one left)`
                })))
          },
          writeManifest: (bytes) =>
            Effect.andThen(Effect.sync(() => void (round.manifestTried = true)), create("writeManifest", roundPrefix(ref) + MANIFEST_FILE, bytes))
        })
      )

    return {
      describe: (ref, file) => `${roundPrefix(ref)}${file ?? ""} (NATS object store ${bucket})`,
      writeRound,
      completeRounds: (projection, version) =>
        Effect.map(
          request("completeRounds", "list the artifacts", () => roundsOf(store, projection, version)),
          (rounds) => [...rounds].filter(([, files]) => files.includes(MANIFEST_FILE)).map(([round]) => round).sort((a, b) => a - b)
        ),
      read: (ref, file) => request("read", `read the object ${roundPrefix(ref)}${file}`, () => readObject(store, roundPrefix(ref) + file)),
      removeIncomplete: (projection, version) =>
        request("removeIncomplete", "remove the objects of incomplete rounds", async () => {
          let removed = 0
          for (const [round, files] of await roundsOf(store, projection, version)) {
            if (files.includes(MANIFEST_FILE)) continue
            const prefix = roundPrefix({ projection, version, round })
            for (const file of files) await deleteObject(store, prefix + file)
            removed++
          }
          return removed
        })
    }
  })
