/**
 * annals/file: the embedded, zero-setup layers on `node:fs` (Bun, Deno and Node alike).
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as DirectoryArchive from "./DirectoryArchive.ts"
/** @since 0.1.0 */
export * as FileCursorStore from "./FileCursorStore.ts"
/** @since 0.1.0 */
export * as FileJournal from "./FileJournal.ts"
/** @since 0.1.0 */
export * as FileSnapshotStore from "./FileSnapshotStore.ts"
/** @since 0.1.0 */
export * as FileStores from "./FileStores.ts"
