/**
 * How large one argument of a command may be: the server takes at most `proto-max-bulk-len` bytes
 * per argument (a larger one is a protocol error that closes the connection, failing every command
 * on it), and this runtime makes no string longer than `buffer.constants.MAX_STRING_LENGTH`. The
 * layers check the encoded size of what they store before they build or send it.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as EffectRedis from "effect/persistence/Redis"
import { Buffer, constants } from "node:buffer"

/** The limits of one argument. */
export interface Limits {
  /** The server's `proto-max-bulk-len`, in bytes. */
  readonly bulkBytes: number
  /** This runtime's longest string, in UTF-16 code units. */
  readonly stringLength: number
}

/** Redis' default `proto-max-bulk-len` (512 MB), for a server that does not answer `CONFIG GET`. */
const DEFAULT_BULK_BYTES = 512 * 1024 * 1024

/** The limits on this runtime and server (`CONFIG GET proto-max-bulk-len`, once at open). */
export const serverLimits = (redis: EffectRedis.Redis["Service"]): Effect.Effect<Limits> =>
  Effect.map(Effect.option(redis.send<ReadonlyArray<string>>("CONFIG", "GET", "proto-max-bulk-len")), (reply) => {
    const bulkBytes = Number(Option.getOrUndefined(reply)?.[1])
    return { bulkBytes: Number.isSafeInteger(bulkBytes) && bulkBytes > 0 ? bulkBytes : DEFAULT_BULK_BYTES, stringLength: constants.MAX_STRING_LENGTH }
  })

/** The size of an encoded argument: its length as a string and in UTF-8. */
export interface Size {
  readonly chars: number
  readonly bytes: number
}

/** The size of `text` as it stands. */
export const sizeOf = (text: string): Size => ({ chars: text.length, bytes: Buffer.byteLength(text) })

/** The size of `bytes` bytes as base64. */
export const base64Size = (bytes: number): Size => {
  const chars = 4 * Math.ceil(bytes / 3)
  return { chars, bytes: chars }
}

/** The size of `bytes` bytes as base64 inside a JSON string (quotes included). */
export const base64InJson = (bytes: number): Size => sum([base64Size(bytes)], 2)

/** The sum of sizes, plus `ascii` characters of punctuation. */
export const sum = (sizes: ReadonlyArray<Size>, ascii = 0): Size =>
  sizes.reduce((total, size) => ({ chars: total.chars + size.chars, bytes: total.bytes + size.bytes }), { chars: ascii, bytes: ascii })

/** What is wrong with an argument of `size` (`what` names it), if anything. */
export const sizeProblem = (what: string, size: Size, limits: Limits): string | undefined =>
  size.chars > limits.stringLength
    ? `${what} would be ${size.chars} characters encoded, beyond this runtime's longest string (${limits.stringLength})`
    : size.bytes > limits.bulkBytes
    ? `${what} would be ${size.bytes} bytes encoded, beyond the server's proto-max-bulk-len (${limits.bulkBytes} bytes)`
    : undefined
