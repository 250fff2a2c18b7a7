/**
 * What an `@aws-sdk/client-s3` failure says, safe to put in an error message or a log: the
 * service's error name and code, the HTTP status and the request id — never the request, its
 * headers or the client's configuration (so no credentials), and never the raw SDK error (which
 * carries the response's fields, such as the access key id of a signature mismatch).
 * @internal
 */

/** The parts of a failure annals reports. @internal */
export interface S3Failure {
  /** `NoSuchKey`, `PreconditionFailed`, `ECONNREFUSED`, `TimeoutError` … */
  readonly name: string
  /** The HTTP status, when a response arrived. */
  readonly status: number | undefined
  /** One line for a message: name, status, the service's message when it is not the SDK's placeholder, request id. */
  readonly summary: string
}

/** Describes `cause`, a rejection of `S3Client.send`. @internal */
export const describeS3Failure = (cause: unknown): S3Failure => {
  const error = (cause ?? {}) as {
    readonly name?: unknown
    readonly code?: unknown
    readonly Code?: unknown
    readonly message?: unknown
    readonly $metadata?: { readonly httpStatusCode?: unknown; readonly requestId?: unknown }
  }
  const code = [error.Code, error.code, error.name].find((value): value is string => typeof value === "string" && value !== "")
  const name = code ?? "Error"
  const status = typeof error.$metadata?.httpStatusCode === "number" ? error.$metadata.httpStatusCode : undefined
  const message = typeof error.message === "string" && error.message !== "" && error.message !== "UnknownError" && error.message !== name
    ? error.message
    : undefined
  const requestId = typeof error.$metadata?.requestId === "string" ? error.$metadata.requestId : undefined
  const parts = [name, status === undefined ? undefined : `HTTP ${status}`, message, requestId === undefined ? undefined : `request id ${requestId}`]
  return { name, status, summary: parts.filter((part) => part !== undefined).join(", ") }
}
