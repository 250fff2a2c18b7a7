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
