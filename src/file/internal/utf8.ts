/**
 * UTF-8 helpers for the file Journal's record names (namespace, id, type): their encoded length,
 * and a decoder that hands back one string per distinct short name instead of building a new string
 * for every record — a journal repeats a few namespaces and types, and each stream's id, many times.
 * @internal
 */

const encoder = new TextEncoder()
// ignoreBOM: a name may start with U+FEFF like any other character; it must come back with it.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** The UTF-8 length of `text`. @internal */
export const utf8Length = (text: string): number => {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) >= 0x80) return encoder.encode(text).length
  }
  return text.length
}

/** Encodes `text` into `target` at `offset`; returns the bytes written (`target` must have room). @internal */
export const encodeUtf8Into = (text: string, target: Uint8Array, offset: number): number =>
  encoder.encodeInto(text, target.subarray(offset)).written

/** Decodes UTF-8 (a leading U+FEFF kept); throws on malformed input. @internal */
export const decodeUtf8 = (data: Uint8Array, start: number, end: number): string => {
  if (end - start <= 16) {
    // Short ASCII without the decoder's call overhead.
    let ascii = true
    for (let i = start; i < end; i++) {
      if (data[i]! >= 0x80) {
        ascii = false
        break
      }
    }
    if (ascii) return String.fromCharCode.apply(null, data.subarray(start, end) as unknown as Array<number>)
  }
  return decoder.decode(data.subarray(start, end))
}

/** Names longer than this (in bytes) are decoded without the cache. */
const MAX_CACHED = 64
const SLOTS = 4096

/**
 * Decodes short UTF-8 strings through a direct-mapped cache keyed by their bytes: a name seen
 * recently comes back as the same string, found by a hash and a byte comparison. The cache has a
 * fixed size (4,096 names of up to 64 bytes); each journal owns one (see `FrameCodec`). @internal
 */
export class NameDecoder {
  private readonly pool = new Uint8Array(SLOTS * MAX_CACHED)
  private readonly lengths = new Int16Array(SLOTS).fill(-1)
  private readonly texts: Array<string> = new Array<string>(SLOTS).fill("")

  /** The string `data[start, end)` holds; throws on malformed UTF-8. */
  decode(data: Uint8Array, start: number, end: number): string {
    const length = end - start
    if (length > MAX_CACHED) return decodeUtf8(data, start, end)
    // FNV-1a over the length and up to four bytes at each end (the byte comparison below decides).
    let hash = Math.imul(0x811c9dc5 ^ length, 0x01000193)
    const head = Math.min(end, start + 4)
    for (let i = start; i < head; i++) hash = Math.imul(hash ^ data[i]!, 0x01000193)
    for (let i = Math.max(head, end - 4); i < end; i++) hash = Math.imul(hash ^ data[i]!, 0x01000193)
    const slot = (hash ^ (hash >>> 15)) & (SLOTS - 1)
    const pool = this.pool
    const base = slot * MAX_CACHED
    if (this.lengths[slot] === length) {
      let i = 0
      while (i < length && pool[base + i] === data[start + i]) i++
      if (i === length) return this.texts[slot]!
    }
    const text = decodeUtf8(data, start, end)
    pool.set(data.subarray(start, end), base)
    this.lengths[slot] = length
    this.texts[slot] = text
    return text
  }
}
