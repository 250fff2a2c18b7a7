/**
 * Projection export artifacts over any `ArtifactStore`: a stateful projection's state written as
 * data files plus a `MANIFEST.json` naming the cursor and the writer, which another replica imports
 * before it follows the log from that cursor. Format and layout: `projectionArtifactFormat.ts`; where
 * the bytes go: the store (`ArtifactStore.directory`, `NatsArtifacts`).
 *
 * A writer checks its input, writes every data file, then the manifest with each file's size and
 * SHA-256, last. Readers take only rounds with a manifest, check it (and that it lies where its
 * projection, version and round belong) and every data file's size and SHA-256, and fail with an
 * `ArtifactStoreError` naming the file and what is wrong: damage is never papered over by an older
 * round.
 * @internal
 */
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import { type ArtifactStore, ArtifactStoreError, type RoundRef } from "../ArtifactStore.ts"
import {
  ARTIFACT_FORMAT,
  ARTIFACT_FORMAT_VERSION,
  type ArtifactFile,
  decodeManifest,
  describeProjection,
  encodeManifest,
  fileNamesProblem,
  headerProblem,
  type Manifest,
  MANIFEST_FILE
} from "./projectionArtifactFormat.ts"
import { integerProblem, nameProblem } from "./validate.ts"

export { ARTIFACT_FORMAT, ARTIFACT_FORMAT_VERSION, type ArtifactFile, type Manifest } from "./projectionArtifactFormat.ts"

/** What `writeArtifact` writes: the manifest's fields but those it computes, and the data files' bytes. @internal */
export type ArtifactInput = Omit<Manifest, "format" | "formatVersion" | "files"> & {
  readonly files: ReadonlyArray<{ readonly name: string; readonly bytes: Uint8Array }>
}

/** A complete artifact: where its round is (as the store names it) and its manifest. @internal */
export interface ArtifactEntry {
  readonly location: string
  readonly manifest: Manifest
}

/** A verified artifact: its location, manifest and every data file's bytes by name. @internal */
export interface Artifact extends ArtifactEntry {
  readonly files: ReadonlyMap<string, Uint8Array>
}

const describeCause = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const failure = (method: string, message: string, cause?: unknown) =>
  new ArtifactStoreError({ method, message, ...(cause !== undefined ? { cause } : {}) })

/** Fails saying what `method` was given wrong, if `problem` names something. */
const check = (method: string, problem: string | undefined): Effect.Effect<void, ArtifactStoreError> =>
  problem === undefined ? Effect.void : Effect.fail(failure(method, `${method}: ${problem}`))

const checkProjection = (method: string, projection: unknown, version: unknown) =>
  check(method, nameProblem("projection", projection) ?? integerProblem("version", version, 1))

const hexSha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

/** The manifest of round `ref`, checked against where it lies; undefined when it has none (incomplete). */
const readManifest = (store: ArtifactStore, ref: RoundRef): Effect.Effect<Manifest | undefined, ArtifactStoreError> =>
  Effect.gen(function*() {
    const bytes = yield* store.read(ref, MANIFEST_FILE)
    if (bytes === undefined) return undefined
    const where = store.describe(ref, MANIFEST_FILE)
    const manifest = yield* Effect.try({ try: () => decodeManifest(where, bytes), catch: (cause) => failure("read", describeCause(cause), cause) })
    for (const field of ["projection", "version", "round"] as const) {
      if (manifest[field] !== ref[field]) {
        return yield* Effect.fail(failure(
          "read",
          `the projection artifact manifest ${where} is damaged or misplaced: its ${field} is ${JSON.stringify(manifest[field])}, but it lies where round ${ref.round} of ${
            describeProjection(ref.projection, ref.version)
          } belongs`
        ))
      }
    }
    return manifest
  })

/** Reads every data file `manifest` lists from round `ref`, checking its size and SHA-256. */
const readVerified = (store: ArtifactStore, ref: RoundRef, manifest: Manifest): Effect.Effect<ReadonlyMap<string, Uint8Array>, ArtifactStoreError> =>
  Effect.gen(function*() {
    const manifestPath = store.describe(ref, MANIFEST_FILE)
    const files = new Map<string, Uint8Array>()
    for (const file of manifest.files) {
      const path = store.describe(ref, file.name)
      const bytes = yield* store.read(ref, file.name)
      const problem = bytes === undefined
        ? `is missing (${manifestPath} lists it)`
        : bytes.length !== file.size
        ? `is damaged: it holds ${bytes.length} bytes, ${manifestPath} says ${file.size}`
        : hexSha256(bytes) !== file.sha256
        ? `is damaged: its SHA-256 is ${hexSha256(bytes)}, ${manifestPath} says ${file.sha256}`
        : undefined
      if (problem !== undefined) return yield* Effect.fail(failure("read", `the projection artifact file ${path} ${problem}`))
      files.set(file.name, bytes!)
    }
    return files
  })

/** The "already exported" error for round `ref`, naming its writer when its manifest can be read. */
const alreadyExported = (store: ArtifactStore, ref: RoundRef): Effect.Effect<never, ArtifactStoreError> => {
  const what = `round ${ref.round} of ${describeProjection(ref.projection, ref.version)}`
  const location = store.describe(ref)
  return Effect.flatMap(
    Effect.match(readManifest(store, ref), {
      onFailure: (cause) => failure("writeArtifact", `${what} was already exported to ${location}, whose manifest cannot be read: ${cause.message}`, cause),
      onSuccess: (manifest) =>
        failure(
          "writeArtifact",
          manifest === undefined
            ? `${what} cannot be exported: ${location} already exists without a manifest (run removeIncomplete)`
            : `${what} was already exported by ${JSON.stringify(manifest.writer)} (${location})`
        )
    }),
    Effect.fail
  )
}

/**
 * Writes an artifact of `input.projection` at `input.version` for `input.round` to `store` (its data
 * files, then the manifest) and succeeds with its location and manifest. Fails if the round was
 * already exported (the caller's lease normally prevents that), naming its writer. @internal
 */
export const writeArtifact = (store: ArtifactStore, input: ArtifactInput): Effect.Effect<ArtifactEntry, ArtifactStoreError> =>
  Effect.gen(function*() {
    const method = "writeArtifact"
    yield* check(method, headerProblem(input as unknown as Record<string, unknown>))
    yield* check(method, Array.isArray(input.files) ? fileNamesProblem(input.files.map((file) => file?.name)) : "files must be an array")
    for (const file of input.files) {
      yield* check(method, file.bytes instanceof Uint8Array ? undefined : `the bytes of the data file ${JSON.stringify(file.name)} must be a Uint8Array`)
    }
    const { projection, version, round } = input
    const ref: RoundRef = { projection, version, round }
    if ((yield* store.read(ref, MANIFEST_FILE)) !== undefined) return yield* alreadyExported(store, ref)
    const written = yield* Effect.scoped(Effect.gen(function*() {
      const writer = yield* store.writeRound(ref)
      const files: Array<ArtifactFile> = []
      for (const file of input.files) {
        yield* writer.writeFile(file.name, file.bytes)
        files.push({ name: file.name, size: file.bytes.length, sha256: hexSha256(file.bytes) })
      }
      const manifest: Manifest = {
        format: ARTIFACT_FORMAT,
        formatVersion: ARTIFACT_FORMAT_VERSION,
        projection,
        version,
        round,
        cursor: input.cursor,
        timestamp: input.timestamp,
        schemaVersion: input.schemaVersion,
        writer: input.writer,
        createdAt: input.createdAt,
        files
      }
      return (yield* writer.writeManifest(encodeManifest(manifest))) ? manifest : undefined
    })).pipe(
      Effect.mapError((error) => failure(method, `could not export round ${round} of ${describeProjection(projection, version)}: ${error.message}`, error))
    )
    if (written === undefined) return yield* alreadyExported(store, ref)
    return { location: store.describe(ref), manifest: written }
  })

/**
 * Lists the complete artifacts (those with a manifest) of `projection` at `version` in `store`, by
 * round ascending. Manifests are parsed and checked; data files are not read. @internal
 */
export const listArtifacts = (store: ArtifactStore, projection: string, version: number): Effect.Effect<ReadonlyArray<ArtifactEntry>, ArtifactStoreError> =>
  Effect.gen(function*() {
    yield* checkProjection("listArtifacts", projection, version)
    const found: Array<ArtifactEntry> = []
    for (const round of yield* store.completeRounds(projection, version)) {
      const ref = { projection, version, round }
      const manifest = yield* readManifest(store, ref)
      if (manifest !== undefined) found.push({ location: store.describe(ref), manifest })
    }
    return found
  })

/**
 * The newest complete artifact (the highest round with a manifest) of `projection` at `version` in
 * `store`, with every data file read and verified; undefined when there is none. Fails when that
 * artifact is damaged — never falls back to an older round. @internal
 */
export const readLatestArtifact = (store: ArtifactStore, projection: string, version: number): Effect.Effect<Artifact | undefined, ArtifactStoreError> =>
  Effect.gen(function*() {
    yield* checkProjection("readLatestArtifact", projection, version)
    for (const round of [...(yield* store.completeRounds(projection, version))].reverse()) {
      const ref = { projection, version, round }
      const manifest = yield* readManifest(store, ref)
      if (manifest !== undefined) return { location: store.describe(ref), manifest, files: yield* readVerified(store, ref, manifest) }
    }
    return undefined
  })

/**
 * Removes what crashed exports of `projection` at `version` left in `store`; succeeds with how many
 * partial rounds it removed. Run it only while no export of that projection and version is under way
 * (while holding the exporter's lease). @internal
 */
export const removeIncomplete = (store: ArtifactStore, projection: string, version: number): Effect.Effect<number, ArtifactStoreError> =>
  Effect.andThen(checkProjection("removeIncomplete", projection, version), store.removeIncomplete(projection, version))
