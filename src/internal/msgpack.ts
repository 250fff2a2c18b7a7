/**
 * The one msgpack configuration annals uses for every payload, snapshot state and archive object:
 * plain maps (no msgpackr record extension), so any msgpack reader can decode what annals writes.
 * @internal
 */
import { Packr, Unpackr } from "msgpackr"

const packr = new Packr({ useRecords: false, moreTypes: false })

/** Encodes a value as msgpack bytes. @internal */
export const pack = (value: unknown): Uint8Array => bytes(packr.pack(value))

/** Decodes msgpack bytes; throws on malformed input or trailing bytes. @internal */
export const unpack = (data: Uint8Array): unknown => packr.unpack(data)

/** Payloads up to this size are decoded from an unpacker's own buffer (see `makeUnpacker`). */
const SCRATCH_BYTES = 4096

/**
 * An `unpack` for many small payloads, such as a codec's: each is copied into a buffer the unpacker
 * owns and decoded from there. msgpackr builds (and stores on the array) a `DataView` for every new
 * source array, which costs more than the copy when every record read brings a new view; from one
 * buffer it builds one. Binary values are copied out (`copyBuffers`), never views of that buffer.
 * What an earlier payload left past this one's end is zeroed first: msgpackr can read past the end
 * of a crafted payload without throwing (its bundled-strings extension moves the position back), and
 * must then find nothing of another record there. @internal
 */
export const makeUnpacker = (): (data: Uint8Array) => unknown => {
  const unpackr = new Unpackr({ useRecords: false, moreTypes: false, copyBuffers: true })
  const scratch = new Uint8Array(SCRATCH_BYTES)
  let used = 0
  return (data) => {
    if (data.length > SCRATCH_BYTES) return unpackr.unpack(data)
    if (used > data.length) scratch.fill(0, data.length, used)
    scratch.set(data)
    used = data.length
    return unpackr.unpack(scratch, data.length)
  }
}

const mapsUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, moreTypes: false })

/**
 * Decodes msgpack bytes with every map as a `Map`: plain objects would lose a `"__proto__"` key
 * (msgpackr renames it `"__proto_"`). For data whose maps are user-keyed (record metadata). @internal
 */
export const unpackMaps = (data: Uint8Array): unknown => mapsUnpackr.unpack(data)

/**
 * A plain `Uint8Array` view of the same memory: msgpackr returns Node `Buffer`s on Node, which
 * compare unequal to `Uint8Array`s and must not leak into the public API. @internal
 */
export const bytes = (data: Uint8Array): Uint8Array =>
  Object.getPrototypeOf(data) === Uint8Array.prototype
    ? data
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
