/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as used by zlib, PNG and gzip.
 * Slicing-by-8 keeps checksumming cheap next to the I/O it guards.
 * @internal
 */
const TABLES: ReadonlyArray<Uint32Array> = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256))
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    tables[0]![n] = c >>> 0
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[0]![n]!
    for (let t = 1; t < 8; t++) {
      c = tables[0]![c & 0xff]! ^ (c >>> 8)
      tables[t]![n] = c >>> 0
    }
  }
  return tables
})()

// Module-level so that a call pays no destructuring (an iterator walk on some engines).
const t0 = TABLES[0]!, t1 = TABLES[1]!, t2 = TABLES[2]!, t3 = TABLES[3]!
const t4 = TABLES[4]!, t5 = TABLES[5]!, t6 = TABLES[6]!, t7 = TABLES[7]!

/** Feeds `bytes[start, end)` into the running (inverted) CRC `c`. */
const update = (c: number, bytes: Uint8Array, start: number, end: number): number => {
  let i = start
  const end8 = end - ((end - start) % 8)
  while (i < end8) {
    const a = (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) ^ c
    c = t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^ t4[a >>> 24]! ^
      t3[bytes[i + 4]!]! ^ t2[bytes[i + 5]!]! ^ t1[bytes[i + 6]!]! ^ t0[bytes[i + 7]!]!
    i += 8
  }
  while (i < end) c = t0[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8)
  return c
}

/** Continues a CRC-32 over `bytes[start, end)` (the whole array by default); start with `crc = 0`. @internal */
export const crc32 = (bytes: Uint8Array, crc = 0, start = 0, end = bytes.length): number =>
  ~update(~crc >>> 0, bytes, start, end) >>> 0

/**
 * The CRC-32 of a journal frame at `start`: its 4 length bytes, then (skipping the 4 checksum bytes)
 * the body up to `end`; writing, reading and recovery all use it. Its own function rather than two
 * calls of `crc32`: JavaScriptCore compiled those poorly on the read path, where the CRC is most of
 * the cost. @internal
 */
export const frameCrc32 = (bytes: Uint8Array, start: number, end: number): number =>
  ~update(update(~0 >>> 0, bytes, start, start + 4), bytes, start + 8, end) >>> 0
