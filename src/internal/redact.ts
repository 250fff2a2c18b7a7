/**
 * Secrets out of messages. @internal
 */

/**
 * `url` (or a message holding URLs) as it may be shown: the password of `scheme://user:password@…`
 * replaced by `***` (up to the last `@`, so that a password holding `/` or `@` is hidden too), a
 * NATS token (`nats://token@…`, `tls://token@…`) likewise, and the values of query parameters that
 * carry secrets (`password`, `pass`, `token`, `secret`, `auth`…). @internal
 */
export const redactUrl = (url: string): string =>
  url
    .replace(/\/\/([^:@/]*):.*@/s, "//$1:***@")
    .replace(/\b(nats|tls):\/\/[^:@/\s]+@/gi, "$1://***@")
    .replace(/([?&][\w-]*(?:password|passwd|pass|token|secret|auth)[\w-]*=)[^&#\s]*/gi, "$1***")
