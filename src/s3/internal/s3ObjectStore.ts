/**
 * The Archive's `ObjectStore` on an S3 bucket, through `@aws-sdk/client-s3`:
 *
 * - `putIfAbsent`: `PutObject` with `If-None-Match: *` — the conditional create that AWS S3, R2,
 *   MinIO and Ceph honour; 412 (PreconditionFailed) means the key is taken. A 409
 *   (ConditionalRequestConflict: another conditional write to the key was in progress) is sent
 *   again, and then gets 412 or succeeds.
 * - `get`: `GetObject`; NoSuchKey is "no object".
 * - `list`: `ListObjectsV2` page by page (continuation tokens), so any number of objects.
 *
 * Every call runs with an abort signal: interrupting the fiber aborts the request, and a call that
 * takes longer than `timeoutMs` (wall-clock) is aborted and fails naming the timeout (a server that
 * hangs is an error, not a stuck Archiver).
 * @internal
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3"
import * as Effect from "effect/Effect"
import { ArchiveError, type ObjectStore } from "../../Archive.ts"
import { describeS3Failure, type S3Failure } from "./s3Errors.ts"

/** Where the objects are and how long a call may take. @internal */
export interface S3ObjectStoreOptions {
  readonly client: S3Client
  readonly bucket: string
  readonly timeoutMs: number
}

/** A call that failed: its description, for the caller to decide (412 is an answer, not a failure). */
class CallFailed {
  readonly failure: S3Failure
  constructor(failure: S3Failure) {
    this.failure = failure
  }
}

/** The `ObjectStore` over `options.bucket`. @internal */
export const makeS3ObjectStore = (options: S3ObjectStoreOptions): ObjectStore => {
  const { bucket, client, timeoutMs } = options

  /**
   * Sends a command with an abort signal: the fiber's (interruption) or the timeout's, whichever
   * comes first. The timeout is wall-clock time, like the network's, not the Effect Clock (a
   * TestClock moved forward must not time out a request that is on its way).
   */
  const call = <A>(send: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, CallFailed> =>
    Effect.tryPromise({
      try: (interrupted) => {
        const timeout = AbortSignal.timeout(timeoutMs)
        return send(AbortSignal.any([interrupted, timeout])).catch((cause) => {
          throw timeout.aborted ? new CallFailed({ name: "TimeoutError", status: undefined, summary: `no answer within ${timeoutMs} ms` }) : cause
        })
      },
      catch: (cause) => cause instanceof CallFailed ? cause : new CallFailed(describeS3Failure(cause))
    })

  const archiveError = (method: string, what: string, key: string | undefined) => (failed: CallFailed) =>
    new ArchiveError({
      method,
      message: `Archive ${what} in S3 bucket ${bucket} failed: ${failed.failure.summary}`,
      ...(key === undefined ? {} : { key }),
      cause: failed.failure
    })

  return {
    get: (key) =>
      call((abortSignal) => client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }).then((output) =>
        output.Body === undefined ? new Uint8Array(0) : output.Body.transformToByteArray()
      )).pipe(
        Effect.catchIf((failed) => failed.failure.name === "NoSuchKey", () => Effect.succeed(undefined)),
        Effect.mapError(archiveError("get", `get of ${key}`, key))
      ),
    putIfAbsent: (key, bytes) => {
      const put = call((abortSignal) =>
        client.send(
          new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, IfNoneMatch: "*", ContentType: "application/vnd.msgpack" }),
          { abortSignal }
        )
      )
      const conflict = (failed: CallFailed) => failed.failure.status === 409 || failed.failure.name === "ConditionalRequestConflict"
      return put.pipe(
        Effect.retry({ times: 3, while: conflict }),
        Effect.as(true),
        Effect.catchIf((failed) => failed.failure.status === 412 || failed.failure.name === "PreconditionFailed", () => Effect.succeed(false)),
        Effect.mapError(archiveError("put", `put of ${key}`, key))
      )
    },
    list: (prefix) =>
      Effect.gen(function*() {
        const objects: Array<{ readonly key: string; readonly size: number }> = []
        let token: string | undefined
        do {
          const page = yield* call((abortSignal) =>
            client.send(
              new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token === undefined ? {} : { ContinuationToken: token }) }),
              { abortSignal }
            )
          )
          for (const object of page.Contents ?? []) {
            if (object.Key !== undefined) objects.push({ key: object.Key, size: object.Size ?? 0 })
          }
          token = page.IsTruncated === true ? page.NextContinuationToken : undefined
        } while (token !== undefined)
        return objects
      }).pipe(Effect.mapError(archiveError("list", `listing of prefix ${JSON.stringify(prefix)}`, undefined)))
  }
}
