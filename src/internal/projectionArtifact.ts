/**
 * Projection export artifacts on a file system: a stateful projection's state written as data files
 * plus a `MANIFEST.json` naming the cursor and the writer, which another replica imports before it
 * follows the log from that cursor. Plain promises over `node:fs`; the Projection runtime wraps them
 * in Effect and maps their Errors. Layout and manifest: `projectionArtifactFormat.ts`.
 *
 * The contract: a round directory holding `MANIFEST.json` is a complete, durable artifact. A writer
 * builds the artifact in a temporary directory beside the round dirs (every data file written and
 * fsynced, then the manifest written and fsynced, then the temporary directory fsynced), renames it to
 * the round's name and fsyncs the parent; directories it creates on the way have their parents fsynced.
 * A crash leaves at most a temporary directory, which readers never look at and `removeIncomplete`
 * removes. Readers check the manifest and every file's size and SHA-256, and throw an Error naming the
 * file and what is wrong: damage is never papered over by an older round.
 * @internal
 */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as NodePath from "node:path"
import { fsyncDirectory, isNotFound, makeDirectoryDurably, writeFileDurably } from "./durableFs.ts"
import {
  ARTIFACT_FORMAT,
  ARTIFACT_FORMAT_VERSION,
  type ArtifactFile,
  decodeManifest,
  describeProjection,
  encodeManifest,
  fileNamesProblem,
  headerProblem,
  isTempName,
  type Manifest,
  MANIFEST_FILE,
  projectionDirectory,
  roundName,
  roundOf,
  tempName
} from "./projectionArtifactFormat.ts"
import { integerProblem, nameProblem } from "./validate.ts"

export { ARTIFACT_FORMAT, ARTIFACT_FORMAT_VERSION, type ArtifactFile, type Manifest } from "./projectionArtifactFormat.ts"

/** What `writeArtifact` writes: the manifest's fields but those it computes, and the data files' bytes. @internal */
export type ArtifactInput = Omit<Manifest, "format" | "formatVersion" | "files"> & {
  readonly files: ReadonlyArray<{ readonly name: string; readonly bytes: Uint8Array }>
}

/** An artifact found on disk: its directory and manifest. @internal */
export interface ArtifactEntry {
  readonly directory: string
  readonly manifest: Manifest
}

/** A verified artifact: its directory, manifest and every data file's bytes by name. @internal */
export interface Artifact extends ArtifactEntry {
  readonly files: ReadonlyMap<string, Uint8Array>
}

const describeCause = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** Throws an Error saying what `method` was given wrong, if `problem` names something. */
const check = (method: string, problem: string | undefined): void => {
  if (problem !== undefined) throw new Error(`${method}: ${problem}`)
}

const checkProjection = (method: string, projection: unknown, version: unknown): void =>
  check(method, nameProblem("projection", projection) ?? integerProblem("version", version, 1))

const hexSha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

/** A file's bytes as a plain Uint8Array (a Buffer would compare unequal to one). */
const readBytes = async (path: string): Promise<Uint8Array> => {
  const buffer = await fs.readFile(path)
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}

/** The manifest of the round directory `directory`, checked against where it lies; undefined when it has none (incomplete). */
const readManifest = async (directory: string, projection: string, version: number, round: number): Promise<Manifest | undefined> => {
  const path = NodePath.join(directory, MANIFEST_FILE)
  let bytes: Uint8Array
  try {
    bytes = await readBytes(path)
  } catch (cause) {
    if (isNotFound(cause)) return undefined
    throw new Error(`could not read the projection artifact manifest ${path}: ${describeCause(cause)}`, { cause })
  }
  const manifest = decodeManifest(path, bytes)
  const expected = { projection, version, round }
  for (const field of ["projection", "version", "round"] as const) {
    if (manifest[field] !== expected[field]) {
      throw new Error(
        `the projection artifact manifest ${path} is damaged or misplaced: its ${field} is ${JSON.stringify(manifest[field])}, but it lies where round ${round} of ${
          describeProjection(projection, version)
        } belongs`
      )
    }
  }
  return manifest
}

/** The rounds whose directories lie in `parent` (complete or not), ascending; none if `parent` does not exist. */
const rounds = async (parent: string): Promise<Array<number>> => {
  let entries: Array<string>
  try {
    entries = await fs.readdir(parent)
  } catch (cause) {
    if (isNotFound(cause)) return []
    throw new Error(`could not list the projection artifacts in ${parent}: ${describeCause(cause)}`, { cause })
  }
  return entries.flatMap((entry) => {
    const round = roundOf(entry)
    return round === undefined ? [] : [round]
  }).sort((a, b) => a - b)
}

/** Reads every data file `manifest` lists from `directory`, checking its size and SHA-256. */
const readVerified = async (directory: string, manifest: Manifest): Promise<ReadonlyMap<string, Uint8Array>> => {
  const manifestPath = NodePath.join(directory, MANIFEST_FILE)
  const files = new Map<string, Uint8Array>()
  for (const file of manifest.files) {
    const path = NodePath.join(directory, file.name)
    let bytes: Uint8Array
    try {
      bytes = await readBytes(path)
    } catch (cause) {
      if (isNotFound(cause)) throw new Error(`the projection artifact file ${path} is missing (${manifestPath} lists it)`, { cause })
      throw new Error(`could not read the projection artifact file ${path}: ${describeCause(cause)}`, { cause })
    }
    if (bytes.length !== file.size) {
      throw new Error(`the projection artifact file ${path} is damaged: it holds ${bytes.length} bytes, ${manifestPath} says ${file.size}`)
    }
    const sha256 = hexSha256(bytes)
    if (sha256 !== file.sha256) {
      throw new Error(`the projection artifact file ${path} is damaged: its SHA-256 is ${sha256}, ${manifestPath} says ${file.sha256}`)
    }
    files.set(file.name, bytes)
  }
  return files
}

/** The "already exported" Error for the round directory `directory`, naming its writer when its manifest can be read. */
const alreadyExported = async (directory: string, projection: string, version: number, round: number): Promise<Error> => {
  const what = `round ${round} of ${describeProjection(projection, version)}`
  try {
    const manifest = await readManifest(directory, projection, version, round)
    return new Error(
      manifest === undefined
        ? `${what} cannot be exported: ${directory} already exists without a manifest (run removeIncomplete)`
        : `${what} was already exported by ${JSON.stringify(manifest.writer)} (${directory})`
    )
  } catch (cause) {
    return new Error(`${what} was already exported to ${directory}, whose manifest cannot be read: ${describeCause(cause)}`, { cause })
  }
}

/** True when `path` exists. */
const exists = async (path: string): Promise<boolean> => {
  try {
    await fs.access(path)
    return true
  } catch (cause) {
    if (isNotFound(cause)) return false
    throw new Error(`could not look at ${path}: ${describeCause(cause)}`, { cause })
  }
}

/**
 * Writes an artifact of `input.projection` at `input.version` for `input.round` under `root` (see the
 * module doc for the protocol) and resolves with its directory and manifest. Fails if the round was
 * already exported (the caller's lease normally prevents that), naming its writer. @internal
 */
export const writeArtifact = async (root: string, input: ArtifactInput): Promise<ArtifactEntry> => {
  const method = "writeArtifact"
  check(method, headerProblem(input as unknown as Record<string, unknown>))
  check(method, Array.isArray(input.files) ? fileNamesProblem(input.files.map((file) => file?.name)) : "files must be an array")
  for (const file of input.files) {
    check(method, file.bytes instanceof Uint8Array ? undefined : `the bytes of the data file ${JSON.stringify(file.name)} must be a Uint8Array`)
  }
  const { projection, version, round } = input
  const parent = projectionDirectory(root, projection, version)
  const directory = NodePath.join(parent, roundName(round))
  try {
    await makeDirectoryDurably(parent)
  } catch (cause) {
    throw new Error(`could not create the projection artifact directory ${parent}: ${describeCause(cause)}`, { cause })
  }
  if (await exists(directory)) throw await alreadyExported(directory, projection, version, round)
  const temp = NodePath.join(parent, tempName(round, randomBytes(8).toString("hex")))
  let step = `create ${temp}`
  let manifest: Manifest
  try {
    await fs.mkdir(temp)
    const files: Array<ArtifactFile> = []
    for (const file of input.files) {
      step = `write ${NodePath.join(temp, file.name)}`
      await writeFileDurably(NodePath.join(temp, file.name), file.bytes)
      files.push({ name: file.name, size: file.bytes.length, sha256: hexSha256(file.bytes) })
    }
    manifest = {
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
    step = `write ${NodePath.join(temp, MANIFEST_FILE)}`
    await writeFileDurably(NodePath.join(temp, MANIFEST_FILE), encodeManifest(manifest))
    step = `fsync ${temp}`
    await fsyncDirectory(temp)
    step = `rename ${temp} to ${directory}`
    await fs.rename(temp, directory)
  } catch (cause) {
    await fs.rm(temp, { recursive: true, force: true }).catch(() => undefined)
    // Another writer of the same round renamed its artifact into place after the check above.
    if (step.startsWith("rename") && await exists(directory).catch(() => false)) throw await alreadyExported(directory, projection, version, round)
    throw new Error(`could not export round ${round} of ${describeProjection(projection, version)}: could not ${step}: ${describeCause(cause)}`, { cause })
  }
  try {
    await fsyncDirectory(parent)
  } catch (cause) {
    throw new Error(`exported round ${round} of ${describeProjection(projection, version)} to ${directory}, but could not fsync ${parent}: ${describeCause(cause)}`, {
      cause
    })
  }
  return { directory, manifest }
}

/**
 * Lists the complete artifacts (those with a manifest) of `projection` at `version` under `root`, by
 * round ascending. Manifests are parsed and checked; data files are not read. @internal
 */
export const listArtifacts = async (root: string, projection: string, version: number): Promise<ReadonlyArray<ArtifactEntry>> => {
  checkProjection("listArtifacts", projection, version)
  const parent = projectionDirectory(root, projection, version)
  const found: Array<ArtifactEntry> = []
  for (const round of await rounds(parent)) {
    const directory = NodePath.join(parent, roundName(round))
    const manifest = await readManifest(directory, projection, version, round)
    if (manifest !== undefined) found.push({ directory, manifest })
  }
  return found
}

/**
 * The newest complete artifact (the highest round with a manifest) of `projection` at `version` under
 * `root`, with every data file read and verified; undefined when there is none. Throws when that
 * artifact is damaged — never falls back to an older round. @internal
 */
export const readLatestArtifact = async (root: string, projection: string, version: number): Promise<Artifact | undefined> => {
  checkProjection("readLatestArtifact", projection, version)
  const parent = projectionDirectory(root, projection, version)
  for (const round of (await rounds(parent)).reverse()) {
    const directory = NodePath.join(parent, roundName(round))
    const manifest = await readManifest(directory, projection, version, round)
    if (manifest !== undefined) return { directory, manifest, files: await readVerified(directory, manifest) }
  }
  return undefined
}

/**
 * Removes what crashed exports of `projection` at `version` left under `root` — temporary directories,
 * and round directories without a manifest — and resolves with how many it removed. Run it only while
 * no export of that projection and version is under way (while holding the exporter's lease): it would
 * remove the temporary directory of a running export. @internal
 */
export const removeIncomplete = async (root: string, projection: string, version: number): Promise<number> => {
  checkProjection("removeIncomplete", projection, version)
  const parent = projectionDirectory(root, projection, version)
  let entries: Array<string>
  try {
    entries = await fs.readdir(parent)
  } catch (cause) {
    if (isNotFound(cause)) return 0
    throw new Error(`could not list the projection artifacts in ${parent}: ${describeCause(cause)}`, { cause })
  }
  let removed = 0
  for (const entry of entries) {
    const path = NodePath.join(parent, entry)
    const incomplete = isTempName(entry) || (roundOf(entry) !== undefined && !(await exists(NodePath.join(path, MANIFEST_FILE))))
    if (!incomplete) continue
    try {
      await fs.rm(path, { recursive: true, force: true })
    } catch (cause) {
      throw new Error(`could not remove the incomplete projection artifact ${path}: ${describeCause(cause)}`, { cause })
    }
    removed++
  }
  if (removed > 0) await fsyncDirectory(parent)
  return removed
}
