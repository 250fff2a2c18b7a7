/**
 * Projection export artifacts in a local directory: the byte storage behind
 * `ArtifactStore.directory`, as plain promises over `node:fs` that reject with an Error naming the
 * path (the public module wraps them in Effect). Layout: `projectionArtifactFormat.ts`.
 *
 * The contract: a round directory holding `MANIFEST.json` is a complete, durable artifact. A writer
 * builds the round in a temporary directory beside the round dirs (every data file written and
 * fsynced, then the manifest written and fsynced, then the temporary directory fsynced), renames it to
 * the round's name and fsyncs the parent; directories it creates on the way have their parents fsynced.
 * A crash leaves at most a temporary directory, which readers never look at and `removeIncomplete`
 * removes.
 * @internal
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as NodePath from "node:path"
import type { RoundRef } from "../ArtifactStore.ts"
import { fsyncDirectory, isNotFound, makeDirectoryDurably, writeFileDurably } from "./durableFs.ts"
import { isTempName, MANIFEST_FILE, projectionDirectory, roundName, roundOf, tempName } from "./projectionArtifactFormat.ts"

/** A round being written: its files go to a temporary directory until `writeManifest` renames it into place. @internal */
export interface RoundWrite {
  readonly writeFile: (name: string, bytes: Uint8Array) => Promise<void>
  /** Writes the manifest and renames the round into place: `false` (nothing replaced) when its directory exists already. */
  readonly writeManifest: (bytes: Uint8Array) => Promise<boolean>
  /** Removes the temporary directory unless the round was renamed into place. */
  readonly abandon: () => Promise<void>
}

const describeCause = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** The directory of round `ref` under `root`, or its file `file`. @internal */
export const roundPath = (root: string, ref: RoundRef, file?: string): string => {
  const directory = NodePath.join(projectionDirectory(root, ref.projection, ref.version), roundName(ref.round))
  return file === undefined ? directory : NodePath.join(directory, file)
}

/** True when `path` exists (by `lstat`: Deno's `access` also needs the permission to read the user id). */
const exists = async (path: string): Promise<boolean> => {
  try {
    await fs.lstat(path)
    return true
  } catch (cause) {
    if (isNotFound(cause)) return false
    throw new Error(`could not look at ${path}: ${describeCause(cause)}`, { cause })
  }
}

/** The entries of `parent`; none if it does not exist. */
const entriesOf = async (parent: string): Promise<Array<string>> => {
  try {
    return await fs.readdir(parent)
  } catch (cause) {
    if (isNotFound(cause)) return []
    throw new Error(`could not list the projection artifacts in ${parent}: ${describeCause(cause)}`, { cause })
  }
}

/** The bytes of the file at `path` as a plain Uint8Array (a Buffer would compare unequal to one), or undefined when it is missing. @internal */
export const readFile = async (path: string): Promise<Uint8Array | undefined> => {
  try {
    const buffer = await fs.readFile(path)
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
  } catch (cause) {
    if (isNotFound(cause)) return undefined
    throw new Error(`could not read the projection artifact file ${path}: ${describeCause(cause)}`, { cause })
  }
}

/** The rounds of `projection` at `version` under `root` whose directory holds a manifest, ascending. @internal */
export const completeRounds = async (root: string, projection: string, version: number): Promise<ReadonlyArray<number>> => {
  const parent = projectionDirectory(root, projection, version)
  const rounds = (await entriesOf(parent)).flatMap((entry) => {
    const round = roundOf(entry)
    return round === undefined ? [] : [round]
  }).sort((a, b) => a - b)
  const complete: Array<number> = []
  for (const round of rounds) {
    if (await exists(NodePath.join(parent, roundName(round), MANIFEST_FILE))) complete.push(round)
  }
  return complete
}

/** Runs `run`, rejecting with an Error that says it could not `what`. */
const step = async <A>(what: string, run: () => Promise<A>): Promise<A> => {
  try {
    return await run()
  } catch (cause) {
    throw new Error(`could not ${what}: ${describeCause(cause)}`, { cause })
  }
}

/** Starts writing round `ref` under `root` (see the module doc for the protocol). @internal */
export const beginRound = async (root: string, ref: RoundRef): Promise<RoundWrite> => {
  const parent = projectionDirectory(root, ref.projection, ref.version)
  const directory = roundPath(root, ref)
  await step(`create the projection artifact directory ${parent}`, () => makeDirectoryDurably(parent))
  const temp = NodePath.join(parent, tempName(ref.round, randomBytes(8).toString("hex")))
  await step(`create ${temp}`, () => fs.mkdir(temp))
  let renamed = false
  return {
    writeFile: (name, bytes) => step(`write ${NodePath.join(temp, name)}`, () => writeFileDurably(NodePath.join(temp, name), bytes)),
    writeManifest: async (bytes) => {
      await step(`write ${NodePath.join(temp, MANIFEST_FILE)}`, () => writeFileDurably(NodePath.join(temp, MANIFEST_FILE), bytes))
      await step(`fsync ${temp}`, () => fsyncDirectory(temp))
      if (await exists(directory)) return false
      try {
        await fs.rename(temp, directory)
      } catch (cause) {
        // Another writer of the same round renamed its artifact into place after the check above.
        if (await exists(directory).catch(() => false)) return false
        throw new Error(`could not rename ${temp} to ${directory}: ${describeCause(cause)}`, { cause })
      }
      renamed = true
      await step(`fsync ${parent} (the round was renamed to ${directory})`, () => fsyncDirectory(parent))
      return true
    },
    abandon: () => (renamed ? Promise.resolve() : fs.rm(temp, { recursive: true, force: true }).catch(() => undefined))
  }
}

/**
 * Removes what crashed exports of `projection` at `version` left under `root` — temporary directories,
 * and round directories without a manifest — and resolves with how many it removed. Run it only while
 * no export of that projection and version is under way (while holding the exporter's lease): it would
 * remove the temporary directory of a running export. @internal
 */
export const removeIncomplete = async (root: string, projection: string, version: number): Promise<number> => {
  const parent = projectionDirectory(root, projection, version)
  let removed = 0
  for (const entry of await entriesOf(parent)) {
    const path = NodePath.join(parent, entry)
    const incomplete = isTempName(entry) || (roundOf(entry) !== undefined && !(await exists(NodePath.join(path, MANIFEST_FILE))))
    if (!incomplete) continue
    await step(`remove the incomplete projection artifact ${path}`, () => fs.rm(path, { recursive: true, force: true }))
    removed++
  }
  if (removed > 0) await fsyncDirectory(parent)
  return removed
}
