/**
 * Compression of archive segment objects. The codec is gzip (`node:zlib`, which Bun, Deno and Node
 * all ship, so an object written on any of them reads on every other); zstd is faster, but Node 20
 * has no zstd and no well-kept portable library both compresses and decompresses it. Compression
 * runs on `node:zlib`'s thread pool (its callback API), so archiving a segment never blocks appends
 * for the milliseconds a large segment takes.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as zlib from "node:zlib"
import { bytes } from "./msgpack.ts"

/** The codecs an archive object may record. @internal */
export type Compression = "none" | "gzip"

/** Every codec this version reads, for checking an option or an object's header. @internal */
export const COMPRESSIONS: ReadonlyArray<Compression> = ["none", "gzip"]

/** What a codec adds to an object's key after `.msgpack` (so the codec is visible in listings). @internal */
export const keySuffix = (compression: Compression): string => compression === "gzip" ? ".gz" : ""

/** The codec a key suffix names, or `undefined` for an unknown suffix. @internal */
export const compressionOfSuffix = (suffix: string): Compression | undefined =>
  suffix === "" ? "none" : suffix === ".gz" ? "gzip" : undefined

/** `data` compressed with `compression` (zlib's default level). @internal */
export const compress = (compression: Compression, data: Uint8Array): Effect.Effect<Uint8Array, Error> =>
  compression === "none" ? Effect.succeed(data) : Effect.callback<Uint8Array, Error>((resume) => {
    zlib.gzip(data, (error, result) => resume(error ? Effect.fail(error) : Effect.succeed(bytes(result))))
  })

/** `data` decompressed with `compression`; fails on damaged input. @internal */
export const decompress = (compression: Compression, data: Uint8Array): Effect.Effect<Uint8Array, Error> =>
  compression === "none" ? Effect.succeed(data) : Effect.callback<Uint8Array, Error>((resume) => {
    zlib.gunzip(data, (error, result) => resume(error ? Effect.fail(error) : Effect.succeed(bytes(result))))
  })
