/**
 * Where a fold's export artifacts live (`Projection.exportState`, `Projection.importLatest`): an
 * artifact store keeps the rounds of each projection at each version — data files, and a
 * `MANIFEST.json` written last — and says which rounds are complete. What an artifact holds (the
 * manifest's fields, each data file's size and SHA-256, their checks on import) is the Projection
 * runtime's, the same over every store; a store keeps bytes under names.
 *
 * - `ArtifactStore.directory(root)`: a local directory, `root/<name as hex>@<version>/<round, 20
 *   digits>/`. A round is written in a temporary directory beside the rounds (each file fsynced) and
 *   renamed into place once its manifest is fsynced.
 * - `NatsArtifacts.make(options)` (`annals/nats`): a JetStream object store, with objects named like
 *   the directory layout (`<name as hex>@<version>/<round>/<file>`), each created only where no
 *   object is, and the manifest's object written last.
 *
 * What every store keeps to:
 * - a round is complete once its manifest is written, and only then: `completeRounds` never lists a
 *   round without one, whatever else of it is there;
 * - `writeManifest` never replaces the manifest of a complete round (it answers `false`), and no
 *   write replaces a data file of a complete round;
 * - what a writer wrote is removed when its scope closes before the manifest was written; what a
 *   crash leaves is removed by `removeIncomplete`, which runs only while no export of that projection
 *   is under way (the Projection runtime runs it holding the export lease).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { TaggedErrorClass } from "./internal/errors.ts"
import * as Directory from "./internal/artifactDirectory.ts"
import { nameProblem } from "./internal/validate.ts"

/**
 * One round of one projection at one version.
 *
 * @since 0.1.0
 * @category models
 */
export interface RoundRef {
  readonly projection: string
  readonly version: number
  readonly round: number
}

/**
 * The fields of an `ArtifactStoreError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface ArtifactStoreErrorFields {
  readonly method: string
  readonly message: string
  readonly cause?: unknown
}

const ArtifactStoreErrorBase: TaggedErrorClass<"ArtifactStoreError", ArtifactStoreErrorFields> = Data.TaggedError("ArtifactStoreError")

/**
 * A store could not be read or written, or what it holds is damaged (the message names the file or
 * object, and where it is).
 *
 * @since 0.1.0
 * @category errors
 */
export class ArtifactStoreError extends ArtifactStoreErrorBase {}

/**
 * Writes the files of one round: the data files, then the manifest, last.
 *
 * @since 0.1.0
 * @category models
 */
export interface RoundWriter {
  /** Writes a data file of the round (not visible as part of a complete round before the manifest). */
  readonly writeFile: (name: string, bytes: Uint8Array) => Effect.Effect<void, ArtifactStoreError>
  /**
   * Writes the manifest, last: `true` once the round is complete (and as durable as the store
   * makes it); `false`, replacing nothing, when the round is taken already.
   */
  readonly writeManifest: (bytes: Uint8Array) => Effect.Effect<boolean, ArtifactStoreError>
}

/**
 * Byte storage for projection export artifacts (see the module doc for what every store keeps to).
 *
 * @since 0.1.0
 * @category models
 */
export interface ArtifactStore {
  /** How messages name round `ref`, or its file `file`: a path, or an object and its bucket. */
  readonly describe: (ref: RoundRef, file?: string) => string
  /** A writer of round `ref`; what it wrote is removed when the scope closes before its manifest was written. */
  readonly writeRound: (ref: RoundRef) => Effect.Effect<RoundWriter, ArtifactStoreError, Scope.Scope>
  /** The rounds of `projection` at `version` that have a manifest, ascending. */
  readonly completeRounds: (projection: string, version: number) => Effect.Effect<ReadonlyArray<number>, ArtifactStoreError>
  /** The bytes of the file `file` of round `ref` (`MANIFEST.json` or a data file), or `undefined` when there is none. */
  readonly read: (ref: RoundRef, file: string) => Effect.Effect<Uint8Array | undefined, ArtifactStoreError>
  /** Removes what exports that never wrote their manifest left of `projection` at `version`; how many partial rounds it removed. */
  readonly removeIncomplete: (projection: string, version: number) => Effect.Effect<number, ArtifactStoreError>
}

/**
 * Where a fold's artifacts are, in the options of `Projection`: a `directory` (the same as
 * `artifacts: ArtifactStore.directory(directory)`), or an `artifacts` store.
 *
 * @since 0.1.0
 * @category models
 */
export type Location =
  | { readonly directory: string; readonly artifacts?: undefined }
  | { readonly artifacts: ArtifactStore; readonly directory?: undefined }

const describeCause = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** `run`'s promise as an Effect, its rejection an `ArtifactStoreError` of `method` with the rejection's message. */
const attempt = <A>(method: string, run: () => Promise<A>): Effect.Effect<A, ArtifactStoreError> =>
  Effect.tryPromise({ try: run, catch: (cause) => new ArtifactStoreError({ method, message: describeCause(cause), cause }) })

/**
 * The artifacts under the local directory `root` (created when the first round is written). Throws
 * when `root` is not a non-empty string.
 *
 * @since 0.1.0
 * @category constructors
 */
export const directory = (root: string): ArtifactStore => {
  const problem = nameProblem("directory", root)
  if (problem !== undefined) throw new Error(`ArtifactStore.directory: ${problem}`)
  return {
    describe: (ref, file) => Directory.roundPath(root, ref, file),
    writeRound: (ref) =>
      Effect.map(
        Effect.acquireRelease(attempt("writeRound", () => Directory.beginRound(root, ref)), (round) => Effect.promise(round.abandon)),
        (round): RoundWriter => ({
          writeFile: (name, bytes) => attempt("writeFile", () => round.writeFile(name, bytes)),
          writeManifest: (bytes) => attempt("writeManifest", () => round.writeManifest(bytes))
        })
      ),
    completeRounds: (projection, version) => attempt("completeRounds", () => Directory.completeRounds(root, projection, version)),
    read: (ref, file) => attempt("read", () => Directory.readFile(Directory.roundPath(root, ref, file))),
    removeIncomplete: (projection, version) => attempt("removeIncomplete", () => Directory.removeIncomplete(root, projection, version))
  }
}
