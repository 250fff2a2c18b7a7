/**
 * How the file Journal stores a record's metadata inside its frame: a msgpack map of strings
 * (fixmap, map16 or map32 of fixstr, str8, str16 or str32 keys and values), which any msgpack
 * reader decodes. Written and read here rather than by msgpackr so that every key comes back
 * exactly — msgpackr renames a `"__proto__"` key to `"__proto_"` — and so that anything other than
 * a map of well-formed strings reads as damage. Segments of format version 1 written through
 * msgpackr hold the same encoding and read the same way.
 * @internal
 */
import { decodeUtf8, encodeUtf8Into, utf8Length } from "./utf8.ts"

const headerBytes = (length: number, small: number): number => (length < small ? 1 : length < 0x10000 ? 3 : 5)

const stringHeaderBytes = (length: number): number => (length < 32 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5)

/**
 * The encoded size of `metadata` (own enumerable string entries, checked by the shared
 * `metadataProblem`), with each string's UTF-8 length pushed onto `lengths` for `encodeMetadataInto`. @internal
 */
export const metadataLength = (metadata: Readonly<Record<string, string>>, lengths: Array<number>): number => {
  const keys = Object.keys(metadata)
  let size = headerBytes(keys.length, 16)
  for (const key of keys) {
    const keyLength = utf8Length(key)
    const valueLength = utf8Length(metadata[key]!)
    lengths.push(keyLength, valueLength)
    size += stringHeaderBytes(keyLength) + keyLength + stringHeaderBytes(valueLength) + valueLength
  }
  return size
}

const writeHeader = (out: Uint8Array, dv: DataView, at: number, length: number, fix: number, fixLimit: number, tag16: number): number => {
  if (length < fixLimit) {
    out[at] = fix | length
    return 1
  }
  if (length < 0x10000) {
    out[at] = tag16
    dv.setUint16(at + 1, length)
    return 3
  }
  out[at] = tag16 + 1
  dv.setUint32(at + 1, length)
  return 5
}

const writeString = (out: Uint8Array, dv: DataView, at: number, text: string, length: number): number => {
  let p = at
  if (length >= 32 && length < 0x100) {
    out[p++] = 0xd9
    out[p++] = length
  } else {
    p += writeHeader(out, dv, p, length, 0xa0, 32, 0xda)
  }
  return p - at + encodeUtf8Into(text, out, p)
}

/**
 * Encodes `metadata` at `at` of `out` (`dv` its view) with the string lengths `metadataLength`
 * pushed onto `lengths` from index `first`; returns the bytes written. @internal
 */
export const encodeMetadataInto = (
  metadata: Readonly<Record<string, string>>,
  lengths: ReadonlyArray<number>,
  first: number,
  out: Uint8Array,
  dv: DataView,
  at: number
): number => {
  const keys = Object.keys(metadata)
  let p = at + writeHeader(out, dv, at, keys.length, 0x80, 16, 0xde)
  let l = first
  for (const key of keys) {
    p += writeString(out, dv, p, key, lengths[l++]!)
    p += writeString(out, dv, p, metadata[key]!, lengths[l++]!)
  }
  return p - at
}

/** Reads a msgpack string at `state.at`; `undefined` if there is none or it does not fit before `end`. */
const readString = (data: Uint8Array, dv: DataView, state: { at: number }, end: number): string | undefined => {
  const at = state.at
  if (at >= end) return undefined
  const tag = data[at]!
  let length: number
  let start: number
  if ((tag & 0xe0) === 0xa0) [length, start] = [tag & 0x1f, at + 1]
  else if (tag === 0xd9 && at + 2 <= end) [length, start] = [data[at + 1]!, at + 2]
  else if (tag === 0xda && at + 3 <= end) [length, start] = [dv.getUint16(at + 1), at + 3]
  else if (tag === 0xdb && at + 5 <= end) [length, start] = [dv.getUint32(at + 1), at + 5]
  else return undefined
  if (start + length > end) return undefined
  state.at = start + length
  return decodeUtf8(data, start, start + length)
}

/**
 * Decodes the metadata in `data[start, end)` (`dv` a view of all of `data`) into a plain object
 * with exactly the stored keys; `undefined` when the bytes are not one msgpack map of well-formed
 * strings filling the range, or repeat a key. @internal
 */
export const decodeMetadata = (data: Uint8Array, dv: DataView, start: number, end: number): Record<string, string> | undefined => {
  if (start >= end) return undefined
  const tag = data[start]!
  let count: number
  const state = { at: start + 1 }
  if ((tag & 0xf0) === 0x80) count = tag & 0x0f
  else if (tag === 0xde && start + 3 <= end) [count, state.at] = [dv.getUint16(start + 1), start + 3]
  else if (tag === 0xdf && start + 5 <= end) [count, state.at] = [dv.getUint32(start + 1), start + 5]
  else return undefined
  const metadata: Record<string, string> = {}
  try {
    for (let i = 0; i < count; i++) {
      const key = readString(data, dv, state, end)
      const value = key === undefined ? undefined : readString(data, dv, state, end)
      if (key === undefined || value === undefined || Object.hasOwn(metadata, key)) return undefined
      defineEntry(metadata, key, value)
    }
  } catch {
    return undefined // malformed UTF-8
  }
  return state.at === end ? metadata : undefined
}

/**
 * Sets `metadata[key] = value` as an own data property — also for `"__proto__"`, which plain
 * assignment would take for the prototype.
 */
const defineEntry = (metadata: Record<string, string>, key: string, value: string): void => {
  if (key === "__proto__") Object.defineProperty(metadata, key, { value, enumerable: true, writable: true, configurable: true })
  else metadata[key] = value
}
