/**
 * The S3 test server itself (test/support/s3.ts, s3Server.ts) through the real `@aws-sdk/client-s3`:
 * conditional creates, a listing over pages, a bucket removed with all its objects, and the
 * gateway's outages of a file's own server (stopped: a connection error at once, started again: the
 * objects kept; paused: a request hangs until aborted, resumed: it answers).
 */
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { Effect } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { isolatedBucket, ownS3Server, type S3Target, s3ClientConfig, s3Target } from "./support/s3.ts"

const target = await s3Target()
// Without a run's server radosgw is missing here: said once, by s3Target.
const own = target === undefined ? undefined : await ownS3Server()

/** A client for `server` (one attempt per call: a failure shows at once), destroyed when the scope closes. */
const client = (server: S3Target) =>
  Effect.acquireRelease(Effect.sync(() => new S3Client({ ...s3ClientConfig(server), maxAttempts: 1 })), (made) => Effect.sync(() => made.destroy()))

/** The rejection of `promise` (failing if it resolves). */
const rejection = async (promise: Promise<unknown>): Promise<{ name?: string; code?: string; $metadata?: { httpStatusCode?: number } }> => {
  try {
    await promise
  } catch (error) {
    return error as never
  }
  assert.fail("expected the call to fail")
}

if (target !== undefined) {
  test(`S3 server [${target.name}]: PutObject with If-None-Match: * creates a key once; again it is 412 and the object is unchanged; a wrong secret is refused; of 3 concurrent creates exactly one wins`, () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const bucket = yield* isolatedBucket(target)
      const s3 = yield* client(target)
      yield* Effect.promise(async () => {
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "k", Body: "first", IfNoneMatch: "*" }))
        const refused = await rejection(s3.send(new PutObjectCommand({ Bucket: bucket, Key: "k", Body: "second", IfNoneMatch: "*" })))
        assert.equal(refused.$metadata?.httpStatusCode, 412)
        const stored = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "k" }))
        assert.equal(await stored.Body!.transformToString(), "first")
        const stranger = new S3Client({ ...s3ClientConfig(target), credentials: { ...target.credentials, secretAccessKey: "wrong" } })
        const forbidden = await rejection(stranger.send(new GetObjectCommand({ Bucket: bucket, Key: "k" }))).finally(() => stranger.destroy())
        assert.equal(forbidden.$metadata?.httpStatusCode, 403, "requests are authenticated")
        for (let round = 0; round < 5; round++) {
          const outcomes = await Promise.allSettled(
            ["a", "b", "c"].map((body) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: `race/${round}`, Body: body, IfNoneMatch: "*" })))
          )
          assert.equal(outcomes.filter((outcome) => outcome.status === "fulfilled").length, 1, `round ${round}: ${JSON.stringify(outcomes.map((o) => o.status))}`)
        }
      })
    }))))

  test(`S3 server [${target.name}]: 1,100 objects list in order over two pages; the isolated bucket is deleted with them`, () =>
    Effect.gen(function*() {
      const s3 = yield* client(target)
      const keys = Array.from({ length: 1_100 }, (_, i) => `seg/${String(i).padStart(6, "0")}`)
      const bucket = yield* Effect.scoped(Effect.gen(function*() {
        const bucket = yield* isolatedBucket(target)
        yield* Effect.forEach(keys, (Key) => Effect.promise(() => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key }))), {
          concurrency: 16,
          discard: true
        })
        const listed: Array<string> = []
        let token: string | undefined
        let pages = 0
        do {
          const page = yield* Effect.promise(() => s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token })))
          pages += 1
          listed.push(...(page.Contents ?? []).map((object) => object.Key!))
          token = page.IsTruncated === true ? page.NextContinuationToken : undefined
        } while (token !== undefined)
        assert.equal(pages, 2)
        assert.deepEqual(listed, keys)
        return bucket
      }))
      const gone = yield* Effect.promise(() => rejection(s3.send(new HeadBucketCommand({ Bucket: bucket }))))
      assert.equal(gone.$metadata?.httpStatusCode, 404, "the bucket is gone")
    }).pipe(Effect.scoped, Effect.runPromise))
}

if (own !== undefined) {
  test(`S3 server [${own.name}, own]: a stopped gateway refuses connections at once and keeps the objects; a paused one hangs until the call is aborted, resumed it answers`, () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const bucket = yield* isolatedBucket(own)
      const s3 = yield* client(own)
      const head = (signal?: AbortSignal) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "kept" }), signal === undefined ? {} : { abortSignal: signal })
      const gateway = (enter: () => Promise<void>, leave: () => Promise<void>) =>
        Effect.acquireRelease(Effect.promise(enter), () => Effect.promise(leave))
      yield* Effect.promise(() => s3.send(new PutObjectCommand({ Bucket: bucket, Key: "kept", Body: "12345" })))

      // Started again even if an assertion fails, so that the bucket can be removed.
      yield* Effect.scoped(Effect.gen(function*() {
        yield* gateway(own.stopGateway, own.startGateway)
        const started = Date.now()
        const refused = yield* Effect.promise(() => rejection(head()))
        // A new connection is refused; one the client's pool kept open from before is reset.
        assert.ok(refused.code === "ECONNREFUSED" || refused.code === "ECONNRESET", JSON.stringify(refused))
        assert.ok(Date.now() - started < 2_000, "refused at once")
      }))
      assert.equal((yield* Effect.promise(() => head())).ContentLength, 5, "the object survived the outage")

      yield* Effect.scoped(Effect.gen(function*() {
        yield* gateway(own.pauseGateway, own.resumeGateway)
        const started = Date.now()
        const aborted = yield* Effect.promise(() => rejection(head(AbortSignal.timeout(1_000))))
        const elapsed = Date.now() - started
        assert.equal(aborted.name, "AbortError", JSON.stringify(aborted))
        assert.ok(elapsed >= 900 && elapsed < 5_000, `aborted after the signal's 1 s (${elapsed} ms)`)
      }))
      assert.equal((yield* Effect.promise(() => head())).ContentLength, 5, "a resumed gateway answers")
    }))))
}
