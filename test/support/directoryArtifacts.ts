/**
 * The projection artifact functions (`src/internal/projectionArtifact.ts`) over the directory store
 * `ArtifactStore.directory(root)`, as promises that reject with the store's error and give each
 * artifact's round directory as `directory`: what the artifact unit tests, the crash test and its
 * child process call.
 */
import { Effect } from "effect"
import * as ArtifactStore from "../../src/ArtifactStore.ts"
import * as Artifact from "../../src/internal/projectionArtifact.ts"

/** An artifact on disk: its round directory and manifest. */
export interface DirectoryEntry {
  readonly directory: string
  readonly manifest: Artifact.Manifest
}

const onDisk = <E extends Artifact.ArtifactEntry>({ location, ...rest }: E) => ({ directory: location, ...rest })

/** Writes an artifact under `root` (see `Artifact.writeArtifact`). */
export const writeArtifact = (root: string, input: Artifact.ArtifactInput): Promise<DirectoryEntry> =>
  Effect.runPromise(Effect.map(Artifact.writeArtifact(ArtifactStore.directory(root), input), onDisk))

/** The complete artifacts of `projection`@`version` under `root`, by round. */
export const listArtifacts = (root: string, projection: string, version: number): Promise<ReadonlyArray<DirectoryEntry>> =>
  Effect.runPromise(Effect.map(Artifact.listArtifacts(ArtifactStore.directory(root), projection, version), (entries) => entries.map(onDisk)))

/** The newest complete artifact of `projection`@`version` under `root`, verified. */
export const readLatestArtifact = (
  root: string,
  projection: string,
  version: number
): Promise<(DirectoryEntry & { readonly files: ReadonlyMap<string, Uint8Array> }) | undefined> =>
  Effect.runPromise(Effect.map(Artifact.readLatestArtifact(ArtifactStore.directory(root), projection, version), (found) => found && onDisk(found)))

/** Removes what crashed exports of `projection`@`version` left under `root`. */
export const removeIncomplete = (root: string, projection: string, version: number): Promise<number> =>
  Effect.runPromise(Artifact.removeIncomplete(ArtifactStore.directory(root), projection, version))
