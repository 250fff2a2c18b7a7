/**
 * File names for user-chosen names (subscription names, projection names): the lowercase hex of the
 * name's UTF-8 bytes when that is at most 100 bytes (so ≤ 200 characters, and only `[0-9a-f]`: safe on
 * every file system, case-insensitive ones included, whatever the name holds — `/`, `..`, `@`, spaces,
 * unicode); a longer name (names may be 256 UTF-16 units, up to 768 UTF-8 bytes) is `sha256-` plus
 * the hex of its SHA-256. The two forms cannot meet: `s` is not a hex digit. The hashed form cannot
 * be turned back into the name, so files named this way also hold the name, and readers check it.
 * @internal
 */
import { Buffer } from "node:buffer"
import { createHash } from "node:crypto"

/** Names whose UTF-8 form is longer than this are hashed. */
const MAX_DIRECT_BYTES = 100

/** The file-name stem of `name` (see the module doc). @internal */
export const nameStem = (name: string): string => {
  const bytes = Buffer.from(name, "utf8")
  return bytes.length <= MAX_DIRECT_BYTES ? bytes.toString("hex") : `sha256-${createHash("sha256").update(bytes).digest("hex")}`
}

/** A regular expression source matching every stem `nameStem` gives, and nothing else of that alphabet. @internal */
export const NAME_STEM_PATTERN = "(?:[0-9a-f]+|sha256-[0-9a-f]{64})"
