/**
 * What a postgres.js failure means for the caller: a message that names the server's error (its
 * SQLSTATE code and text), and whether it was the connection that failed (then a write that was
 * sent may have committed: retrying it blindly could apply it twice) or only the connecting.
 * @internal
 */

/** Errors postgres.js raises when the connection goes away (its own codes and the socket's). */
const CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EHOSTUNREACH"
])

/** Connection failures that happen while connecting, before any statement is sent. */
const CONNECTING_CODES = new Set(["CONNECT_TIMEOUT", "ECONNREFUSED", "ENOTFOUND"])

/**
 * What a failure says, whether it was the connection, and whether a statement can have reached
 * the server (`sent`: false when it failed while connecting, so nothing ran). @internal
 */
export const describeFailure = (cause: unknown): { readonly message: string; readonly connection: boolean; readonly sent: boolean } => {
  const error = cause as { readonly code?: unknown; readonly message?: unknown } | undefined
  const code = typeof error?.code === "string" ? error.code : undefined
  const text = typeof error?.message === "string" ? error.message : String(cause)
  // SQLSTATE class 08: connection exception; 57P0x: the server is shutting down.
  const connection = code !== undefined && (CONNECTION_CODES.has(code) || code.startsWith("08") || code.startsWith("57P0"))
  return {
    message: code !== undefined && !text.includes(code) ? `${text} (${code})` : text,
    connection,
    sent: code === undefined || !CONNECTING_CODES.has(code)
  }
}
