/**
 * Secrets out of messages. @internal
 */

/**
 * `url` (or a message holding URLs) with the password of `scheme://user:password@…` replaced by
 * `***`, up to the last `@`, so that a password holding `/` or `@` is hidden too. @internal
 */
export const redactUrl = (url: string): string => url.replace(/\/\/([^:@/]*):.*@/s, "//$1:***@")
