/**
 * The format of a projection export artifact: its types, where it lives, and the manifest as JSON.
 *
 * Layout under a root directory: `<root>/<projection dir>/<round>/`, holding the data files and
 * `MANIFEST.json`; an object store names its objects the same way, `<projection dir>/<round>/<file>`.
 * The projection dir is the projection name's stem (`fileNames.ts`: the hex of its UTF-8 bytes, or
 * `sha256-` and a hash for a long name — safe whatever the name holds: `/`, `@`, spaces, unicode,
 * `..`, letters that differ only in case) plus `@<version>`; the manifest repeats the name, so a
 * reader checks it. The round dir is the round as 20 zero-padded digits. An export under way in a
 * directory lives in `.<round>.<random hex>.tmp` beside the round dirs: its leading dot keeps it from
 * ever being taken for a round.
 *
 * The manifest is written last: a round dir with a `MANIFEST.json` is a complete artifact.
 * @internal
 */
import { Buffer } from "node:buffer"
import * as NodePath from "node:path"
import { nameStem } from "./fileNames.ts"
import { integerProblem, nameProblem, unpairedSurrogate } from "./validate.ts"

/** The `format` field of every manifest. @internal */
export const ARTIFACT_FORMAT = "annals.projection-export"
/** The manifest format version this code writes and reads. @internal */
export const ARTIFACT_FORMAT_VERSION = 1
/** The manifest's file name inside an artifact directory. @internal */
export const MANIFEST_FILE = "MANIFEST.json"

/** One data file of an artifact: its name in the artifact directory, size in bytes and SHA-256 (lowercase hex). @internal */
export interface ArtifactFile {
  readonly name: string
  readonly size: number
  readonly sha256: string
}

/** What `MANIFEST.json` holds. @internal */
export interface Manifest {
  readonly format: typeof ARTIFACT_FORMAT
  readonly formatVersion: number
  /** The projection's name. */
  readonly projection: string
  /** The projection's version (integer ≥ 1). */
  readonly version: number
  /** The export round (integer ≥ 0). */
  readonly round: number
  /** The seq the state is at: every record with seq ≤ cursor is folded into it. */
  readonly cursor: number
  /** The timestamp of the record at `cursor` (0 if none). */
  readonly timestamp: number
  /** The version of the state's encoding. */
  readonly schemaVersion: number
  /** Who exported it (an owner id). */
  readonly writer: string
  /** When it was exported (epoch ms, from the caller's Clock). */
  readonly createdAt: number
  readonly files: ReadonlyArray<ArtifactFile>
}

/** The name of the directory (or object name prefix) of projection `projection` at version `version`. @internal */
export const projectionStem = (projection: string, version: number): string => `${nameStem(projection)}@${version}`

/** The directory (under `root`) of projection `projection` at version `version`. @internal */
export const projectionDirectory = (root: string, projection: string, version: number): string =>
  NodePath.join(root, projectionStem(projection, version))

/** The name of a round's directory. @internal */
export const roundName = (round: number): string => String(round).padStart(20, "0")

const ROUND_NAME = /^\d{20}$/
const TEMP_NAME = /^\.\d{20}\.[0-9a-f]+\.tmp$/

/** The round a directory entry names, or undefined if it is not a round directory's name. @internal */
export const roundOf = (entry: string): number | undefined => (ROUND_NAME.test(entry) ? Number(entry) : undefined)

/** The name of a new temporary directory for `round`, `random` being lowercase hex. @internal */
export const tempName = (round: number, random: string): string => `.${roundName(round)}.${random}.tmp`

/** True when a directory entry is a temporary directory an export left. @internal */
export const isTempName = (entry: string): boolean => TEMP_NAME.test(entry)

/** How messages name a projection at a version: `"orders"@3`. @internal */
export const describeProjection = (projection: string, version: number): string => `${JSON.stringify(projection)}@${version}`

/** Longest data file name, in UTF-8 bytes (file systems allow 255). */
const MAX_FILE_NAME_BYTES = 200

/** What is wrong with a data file name, or undefined. @internal */
export const fileNameProblem = (name: unknown): string | undefined => {
  if (typeof name !== "string") return `a data file name must be a string, got ${typeof name}`
  const quoted = JSON.stringify(name)
  if (name.length === 0) return "a data file name must not be empty"
  if (/[/\\\u0000]/.test(name)) return `the data file name ${quoted} must not contain "/", "\\" or NUL`
  if (name.includes("..") || name === ".") return `the data file name ${quoted} must not be "." or contain ".."`
  if (name.toLowerCase() === MANIFEST_FILE.toLowerCase()) return `the data file name ${quoted} is reserved for the manifest`
  if (Buffer.byteLength(name, "utf8") > MAX_FILE_NAME_BYTES) return `the data file name ${quoted} is longer than ${MAX_FILE_NAME_BYTES} UTF-8 bytes`
  return unpairedSurrogate("the data file name", name)
}

/**
 * What is wrong with a list of data file names (each, and two that one file system would take for the
 * same file: equal but for case or Unicode normalization), or undefined. @internal
 */
export const fileNamesProblem = (names: ReadonlyArray<unknown>): string | undefined => {
  const seen = new Map<string, string>()
  for (const name of names) {
    const problem = fileNameProblem(name)
    if (problem !== undefined) return problem
    const key = (name as string).normalize("NFC").toLowerCase()
    const other = seen.get(key)
    if (other !== undefined) return `the data file names ${JSON.stringify(other)} and ${JSON.stringify(name)} would be the same file on some file systems`
    seen.set(key, name as string)
  }
  return undefined
}

/** What is wrong with the fields of a manifest other than `format`, `formatVersion` and `files`, or undefined. @internal */
export const headerProblem = (fields: Record<string, unknown>): string | undefined =>
  nameProblem("projection", fields["projection"]) ??
    integerProblem("version", fields["version"], 1) ??
    integerProblem("round", fields["round"], 0) ??
    integerProblem("cursor", fields["cursor"], 0) ??
    integerProblem("timestamp", fields["timestamp"], 0) ??
    integerProblem("schemaVersion", fields["schemaVersion"], 0) ??
    nameProblem("writer", fields["writer"]) ??
    integerProblem("createdAt", fields["createdAt"], 0)

/** The bytes of `MANIFEST.json`: the manifest's fields in a fixed order, pretty-printed. @internal */
export const encodeManifest = (manifest: Manifest): Uint8Array =>
  Buffer.from(
    `${
      JSON.stringify(
        {
          format: manifest.format,
          formatVersion: manifest.formatVersion,
          projection: manifest.projection,
          version: manifest.version,
          round: manifest.round,
          cursor: manifest.cursor,
          timestamp: manifest.timestamp,
          schemaVersion: manifest.schemaVersion,
          writer: manifest.writer,
          createdAt: manifest.createdAt,
          files: manifest.files.map((file) => ({ name: file.name, size: file.size, sha256: file.sha256 }))
        },
        null,
        2
      )
    }\n`,
    "utf8"
  )

const SHA256 = /^[0-9a-f]{64}$/

/** What is wrong with the `files` field of a manifest, or undefined. */
const filesProblem = (files: unknown): string | undefined => {
  if (!Array.isArray(files)) return `files must be an array, got ${typeof files}`
  for (const [i, file] of files.entries()) {
    if (file === null || typeof file !== "object" || Array.isArray(file)) return `files[${i}] must be an object { name, size, sha256 }`
    const { name, size, sha256 } = file as Record<string, unknown>
    const problem = fileNameProblem(name) ?? integerProblem(`files[${i}].size`, size, 0)
    if (problem !== undefined) return problem
    if (typeof sha256 !== "string" || !SHA256.test(sha256)) return `files[${i}].sha256 must be 64 lowercase hex digits, got ${JSON.stringify(sha256)}`
  }
  return fileNamesProblem(files.map((file: Record<string, unknown>) => file["name"]))
}

/**
 * Parses and checks the bytes of a manifest; throws an Error naming `path` and what is wrong: not
 * JSON, not an annals projection export, an unknown format version, a field of the wrong type. @internal
 */
export const decodeManifest = (path: string, bytes: Uint8Array): Manifest => {
  const damaged = (problem: string) => new Error(`the projection artifact manifest ${path} is damaged: ${problem}`)
  let fields: unknown
  try {
    fields = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes))
  } catch (cause) {
    throw damaged(`it is not valid UTF-8 JSON (${cause instanceof Error ? cause.message : String(cause)})`)
  }
  if (fields === null || typeof fields !== "object" || Array.isArray(fields)) throw damaged("it is not a JSON object")
  const record = fields as Record<string, unknown>
  if (record["format"] !== ARTIFACT_FORMAT) throw damaged(`its format is ${JSON.stringify(record["format"])}, not ${JSON.stringify(ARTIFACT_FORMAT)}`)
  if (record["formatVersion"] !== ARTIFACT_FORMAT_VERSION) {
    throw new Error(
      `the projection artifact manifest ${path} has formatVersion ${JSON.stringify(record["formatVersion"])}, which this version of annals cannot read (it reads ${ARTIFACT_FORMAT_VERSION})`
    )
  }
  const problem = headerProblem(record) ?? filesProblem(record["files"])
  if (problem !== undefined) throw damaged(problem)
  return {
    format: ARTIFACT_FORMAT,
    formatVersion: ARTIFACT_FORMAT_VERSION,
    projection: record["projection"] as string,
    version: record["version"] as number,
    round: record["round"] as number,
    cursor: record["cursor"] as number,
    timestamp: record["timestamp"] as number,
    schemaVersion: record["schemaVersion"] as number,
    writer: record["writer"] as string,
    createdAt: record["createdAt"] as number,
    files: (record["files"] as Array<Record<string, unknown>>).map((file) => ({
      name: file["name"] as string,
      size: file["size"] as number,
      sha256: file["sha256"] as string
    }))
  }
}
