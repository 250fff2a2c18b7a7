/**
 * The on-disk format of the file CursorStore: one file per subscription name.
 *
 * File name: the name's stem (`internal/fileNames.ts`: the hex of its UTF-8 bytes, or `sha256-` and
 * the hex of their SHA-256 for a long name) plus `.cursor`.
 *
 * Content: a state file (`encodeState`: `ANNALSST`, a CRC-32, a msgpack body) whose body is
 * `["annals.cursor", 1, name, seq | null, updatedAt | null, [owner, until, token] | null, token]`.
 * The name inside is checked against the file's name when read, so a file renamed or copied under
 * another name is damage, not another subscription's cursor.
 * @internal
 */
import type { CursorEntry } from "../../CursorStore.ts"
import { NAME_STEM_PATTERN, nameStem } from "../../internal/fileNames.ts"
import { type CursorFields, cursorEntryOf, cursorFields, cursorFieldsProblem } from "../../internal/cursorFields.ts"
import { nameProblem } from "../../internal/validate.ts"
import { decodeState, encodeState } from "./segmentFormat.ts"

const FORMAT = "annals.cursor"
const FORMAT_VERSION = 1
const SUFFIX = ".cursor"
const FILE_NAME = new RegExp(`^${NAME_STEM_PATTERN}\\.cursor$`)

/** The file name of the subscription `name`. @internal */
export const cursorFileName = (name: string): string => `${nameStem(name)}${SUFFIX}`

/** True when `file` (a name in the directory) has the form of a cursor file. @internal */
export const isCursorFileName = (file: string): boolean => FILE_NAME.test(file)

/** The bytes of the entry file of `name`. @internal */
export const encodeCursorFile = (name: string, entry: CursorEntry): Uint8Array =>
  encodeState([FORMAT, FORMAT_VERSION, name, ...cursorFields(entry)])

/** What is wrong with a decoded body, or undefined when it is a well-formed entry. */
const bodyProblem = (fields: unknown): string | undefined => {
  if (!Array.isArray(fields) || fields.length !== 7 || fields[0] !== FORMAT) return "it is not an annals cursor file"
  if (fields[1] !== FORMAT_VERSION) return `its format version ${String(fields[1])} is not supported`
  return nameProblem("its name", fields[2]) ?? cursorFieldsProblem(fields.slice(3))
}

/**
 * Decodes the entry file named `file`: the name and entry, or a sentence naming the damage (a bad
 * checksum, a malformed body, a name that does not belong to this file). @internal
 */
export const decodeCursorFile = (
  file: string,
  bytes: Uint8Array
): { readonly name: string; readonly entry: CursorEntry } | { readonly problem: string } => {
  const decoded = decodeState(bytes)
  if ("problem" in decoded) return decoded
  const problem = bodyProblem(decoded.value)
  if (problem !== undefined) return { problem }
  const body = decoded.value as ReadonlyArray<unknown>
  const name = body[2] as string
  if (cursorFileName(name) !== file) return { problem: `it holds the cursor of ${JSON.stringify(name)}, which belongs in ${cursorFileName(name)}` }
  return { name, entry: cursorEntryOf(body.slice(3) as unknown as CursorFields) }
}
