/**
 * What a failed NATS request says, for the layers' error messages, and which failures are which.
 *
 * @internal
 */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream"

/** The client's or server's words for a failure (never credentials: neither repeats them). */
export const describeNatsFailure = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** The JetStream API error code of `cause` (e.g. 10071, wrong last sequence), if it is one. */
export const apiErrorCode = (cause: unknown): number | undefined => (cause instanceof JetStreamApiError ? cause.code : undefined)

/** True when the stream asked for does not exist. */
export const isStreamNotFound = (cause: unknown): boolean => apiErrorCode(cause) === JetStreamApiCodes.StreamNotFound

/** True when a publish's expected last sequence (of the stream or of its subject) did not match. */
export const isWrongLastSequence = (cause: unknown): boolean => apiErrorCode(cause) === JetStreamApiCodes.StreamWrongLastSequence

/** True when the message asked for does not exist. */
export const isNoMessage = (cause: unknown): boolean => apiErrorCode(cause) === JetStreamApiCodes.NoMessageFound
