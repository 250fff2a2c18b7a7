/**
 * What a failed Redis command says, for the layers' error messages, and whether its reply was lost.
 *
 * @internal
 */
import type { RedisError } from "effect/persistence/Redis"

/** The client's or server's words for a failure (never a password: neither repeats the URL's). */
export const describeRedisFailure = (error: RedisError | unknown): string => {
  const cause = (error as { readonly cause?: unknown } | undefined)?.cause ?? error
  return cause instanceof Error ? cause.message : String(cause)
}

/**
 * True when the server answered with an error (a `ReplyError`: the command ran, or was refused, and
 * the reply says which); false when the connection failed, timed out or closed, so the command may
 * or may not have run.
 */
export const isReplyError = (error: RedisError | unknown): boolean => {
  const cause = (error as { readonly cause?: unknown } | undefined)?.cause
  return cause instanceof Error && cause.name === "ReplyError"
}
