/**
 * The file Journal's internal failure: damage found while opening or reading, its message naming
 * the file and byte offset. The service turns it into a `JournalError`.
 * @internal
 */

/** Damage that cannot be repaired automatically; the message names file and offset. @internal */
export class Unrecoverable extends Error {}

/** The message of a thrown value. @internal */
export const message = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))
