/**
 * The S3 Archive through the real `@aws-sdk/client-s3` against the run's S3 server (Ceph's radosgw
 * on loopback, test/support/s3Server.ts): the Archive conformance suite (its gzip cases included), a
 * listing past 1,000 objects, configuration from `Config`, and bad options. A server that is gone or
 * hangs: s3-archiver-faults.test.ts.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { ConfigProvider, Effect, Layer } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Archive } from "../src/index.ts"
import { DirectoryArchive } from "../src/file/index.ts"
import { S3Archive } from "../src/s3/index.ts"
import { archiveCases, type ArchiveStorage } from "./conformance/Archive.ts"
import { expectError, open, register } from "./conformance/harness.ts"
import { isolatedBucket, type S3Target, s3ClientConfig, s3Target } from "./support/s3.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

const target = await s3Target()

/** The conformance storage of one bucket: every build reaches its objects; `damage` rewrites one in place. */
const bucketStorage = (server: S3Target, bucket: string): ArchiveStorage => {
  const client = new S3Client(s3ClientConfig(server))
  return {
    layer: (options) => S3Archive.layer({ ...options, bucket, clientConfig: s3ClientConfig(server) }),
    damage: (key, mutate) =>
      Effect.promise(async () => {
        const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        const bytes = await object.Body!.transformToByteArray()
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: mutate(bytes) }))
      })
  }
}

const record = (seq: number) => ({
  seq,
  namespace: "n",
  id: `s${seq % 5}`,
  version: Math.ceil(seq / 5),
  type: "E",
  timestamp: 1_000 + seq,
  payload: new Uint8Array([seq & 0xff, seq >> 8])
})

if (target !== undefined) {
  const server = target
  // The suite's gzip cases cover compressed objects; the runtime suites run the S3 archive with gzip on.
  register("Archive", { name: "s3", durable: true, storage: Effect.map(isolatedBucket(server), (bucket) => bucketStorage(server, bucket)) }, archiveCases)

  test("S3Archive: 1,100 segments list in order across pages, and a prefix sees only its own", () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const bucket = yield* isolatedBucket(server)
      const archive = yield* open(Archive.Archive, S3Archive.layer({ bucket, prefix: "big/", clientConfig: s3ClientConfig(server) }))
      const other = yield* open(Archive.Archive, S3Archive.layer({ bucket, prefix: "bi/", clientConfig: s3ClientConfig(server) }))
      yield* other.put({ startSeq: 1, endSeq: 1, records: [record(1)] })
      yield* Effect.forEach(Array.from({ length: 1_100 }, (_, i) => i + 1), (seq) => archive.put({ startSeq: seq, endSeq: seq, records: [record(seq)] }), {
        concurrency: 16,
        discard: true
      })
      const refs = yield* archive.list()
      assert.equal(refs.length, 1_100)
      assert.deepEqual(refs.map((r) => r.startSeq), Array.from({ length: 1_100 }, (_, i) => i + 1))
      assert.equal((yield* archive.list(1_050)).length, 51)
      assert.equal((yield* other.list()).length, 1)
    }))))

  test("S3Archive.layerConfig reads S3_BUCKET, S3_PREFIX, S3_COMPRESSION, the endpoint, region and keys; layerConfigOrElse falls back without S3_BUCKET", () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const bucket = yield* isolatedBucket(server)
      const env = {
        S3_BUCKET: bucket,
        S3_PREFIX: "app/",
        S3_COMPRESSION: "gzip",
        AWS_ENDPOINT_URL: server.endpoint,
        AWS_REGION: server.region,
        AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey
      }
      const fromEnv = (values: Record<string, string>) => Layer.provide(S3Archive.layerConfigOrElse(DirectoryArchive.layer({ directory: fallback })), ConfigProvider.layer(ConfigProvider.fromUnknown(values)))
      const fallback = yield* tempDirectory("s3-fallback")
      const archive = yield* open(Archive.Archive, fromEnv(env))
      const ref = yield* archive.put({ startSeq: 1, endSeq: 1, records: [record(1)] })
      assert.equal(ref.key, "app/00000000000000000001-00000000000000000001.msgpack.gz")
      const client = new S3Client(s3ClientConfig(server))
      const stored = yield* Effect.promise(() => client.send(new GetObjectCommand({ Bucket: bucket, Key: ref.key })))
      assert.ok((stored.ContentLength ?? 0) > 0, "the object is in the bucket the environment named")
      const local = yield* open(Archive.Archive, fromEnv({}))
      assert.deepEqual(yield* local.list(), [], "without S3_BUCKET: the fallback (an empty directory)")
      yield* Effect.promise(() => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: ref.key })))
      const bad = yield* Effect.result(Effect.scoped(open(Archive.Archive, fromEnv({ ...env, S3_COMPRESSION: "brotli" }))))
      assert.ok(bad._tag === "Failure", "an unknown S3_COMPRESSION fails")
    }))))

  test("S3Archive: a bucket name S3 would refuse, or a bad timeout, fails at start naming it", () =>
    Effect.runPromise(Effect.gen(function*() {
      yield* expectError(Effect.scoped(open(Archive.Archive, S3Archive.layer({ bucket: "Bad_Bucket", clientConfig: s3ClientConfig(server) }))), "ArchiveError", "Bad_Bucket")
      yield* expectError(Effect.scoped(open(Archive.Archive, S3Archive.layer({ bucket: "fine-bucket", clientConfig: s3ClientConfig(server), timeoutMs: 0 }))), "ArchiveError", "timeoutMs")
    })))
}
