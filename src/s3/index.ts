/**
 * annals/s3: the Archive on S3 and S3-compatible object stores (`@aws-sdk/client-s3`).
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as S3Archive from "./S3Archive.ts"
