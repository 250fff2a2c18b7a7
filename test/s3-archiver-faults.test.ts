/**
 * The S3 Archive and the Archiver over it when the server misbehaves (a server of this file's own,
 * whose gateway is stopped, started and paused), on the file Journal with real time
 * (no TestClock: the SDK's timers and the server's are real): a server stopped in the middle of a
 * run (appends go on with no error, the Archiver reports the lag, and once the server is back every
 * pending record is uploaded); a server that hangs (uploads time out and are retried, then catch up);
 * a damaged object (a restore fails naming its key and changes nothing locally); a missing object
 * (a restore refuses naming the missing range); and the Archive's own calls: typed errors naming
 * bucket and key and never a credential, timeouts, interruption.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { Context, Effect, Fiber, Layer, Option, References } from "effect"
import assert from "node:assert/strict"
import * as path from "node:path"
import { test } from "node:test"
import { Archive, Archiver, Journal } from "../src/index.ts"
import { FileJournal } from "../src/file/index.ts"
import { S3Archive } from "../src/s3/index.ts"
import { expectError, open } from "./conformance/harness.ts"
import { isolatedBucket, ownS3Server, type S3Server, s3ClientConfig } from "./support/s3.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

const target = await ownS3Server()

const record = (seq: number) => ({ seq, namespace: "n", id: "s", version: seq, type: "E", timestamp: 1_000 + seq, payload: new Uint8Array([seq]) })

const event = (i: number) => ({ type: "E", payload: new TextEncoder().encode(`event ${i}`) })

/** Waits (real time) until `check` holds, failing naming `what` after `ms`. */
const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, ms = 30_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out after ${ms} ms waiting for ${what}`))
      yield* Effect.sleep("50 millis")
    }
  })

/** A file Journal in `directory` with an Archiver uploading to `bucket` every 10 records, polling every 50 ms. */
const machine = (server: S3Server, directory: string, bucket: string, timeoutMs = 2_000) => {
  const archive = S3Archive.layer({ bucket, clientConfig: { ...s3ClientConfig(server), maxAttempts: 1 }, timeoutMs })
  const storage = Layer.mergeAll(FileJournal.layer({ directory }), archive)
  return Layer.provideMerge(Archiver.layer({ segmentSize: 10, pollInterval: "50 millis", backoff: "50 millis", maxBackoff: "200 millis" }), storage)
}

const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, References.MinimumLogLevel, "Error")

if (target !== undefined) {
  const server = target

  test("S3 Archiver: the server stops mid-run: appends go on, the lag is reported, and after it is back everything pending is uploaded", () =>
    Effect.runPromise(quiet(Effect.scoped(Effect.gen(function*() {
      const bucket = yield* isolatedBucket(server)
      const directory = path.join(yield* tempDirectory("s3-outage"), "journal")
      const services = yield* Layer.build(machine(server, directory, bucket))
      const journal = Context.get(services, Journal.Journal)
      const archiver = Context.get(services, Archiver.Archiver)
      for (let i = 1; i <= 30; i++) yield* journal.append({ namespace: "n", id: "s" }, i - 1, [event(i)])
      yield* eventually("the first 30 records archived", Effect.map(archiver.status, (s) => s.archivedThrough === 30))

      yield* Effect.acquireRelease(Effect.promise(() => server.stopGateway()), () => Effect.promise(() => server.startGateway()))
      for (let i = 31; i <= 75; i++) yield* journal.append({ namespace: "n", id: "s" }, i - 1, [event(i)])
      yield* eventually("the outage reported", Effect.map(archiver.status, (s) => Option.isSome(s.lastError)))
      const during = yield* archiver.status
      assert.equal(during.archivedThrough, 30, "nothing more archived while the server is down")
      assert.equal(during.pendingSeqs, 45, "the lag: every record appended since")
      assert.match(Option.getOrThrow(during.lastError), new RegExp(bucket))

      yield* Effect.promise(() => server.startGateway())
      yield* eventually("the full segments uploaded after the outage", Effect.map(archiver.status, (s) => s.archivedThrough === 70))
      assert.equal(yield* archiver.flush(76), 75, "flush uploads the rest")
      const status = yield* archiver.status
      assert.deepEqual([status.pendingSeqs, Option.isNone(status.lastError)], [0, true])
      const refs = yield* Context.get(services, Archive.Archive).list()
      assert.deepEqual(refs.map((r) => `${r.startSeq}..${r.endSeq}`), ["1..10", "11..20", "21..30", "31..40", "41..50", "51..60", "61..70", "71..75"])
    })))))

  test("S3 Archiver: a server that hangs: uploads time out and are retried, and catch up once it answers", () =>
    Effect.runPromise(quiet(Effect.scoped(Effect.gen(function*() {
      const bucket = yield* isolatedBucket(server)
      const directory = path.join(yield* tempDirectory("s3-hang"), "journal")
      const services = yield* Layer.build(machine(server, directory, bucket, 300))
      const journal = Context.get(services, Journal.Journal)
      const archiver = Context.get(services, Archiver.Archiver)
      yield* Effect.acquireRelease(Effect.promise(() => server.pauseGateway()), () => Effect.promise(() => server.resumeGateway()))
      for (let i = 1; i <= 20; i++) yield* journal.append({ namespace: "n", id: "s" }, i - 1, [event(i)])
      yield* eventually("a timeout reported", Effect.map(archiver.status, (s) => Option.exists(s.lastError, (e) => e.includes("no answer within 300 ms"))))
      assert.equal((yield* archiver.status).archivedThrough, 0)
      yield* Effect.promise(() => server.resumeGateway())
      yield* eventually("the segments uploaded after the server answers", Effect.map(archiver.status, (s) => s.archivedThrough === 20))
    })))))

  /** An archive of 30 records in segments 1..10, 11..20, 21..30, written by a machine that is then gone. */
  const archived = (bucket: string) =>
    Effect.scoped(Effect.gen(function*() {
      const services = yield* Layer.build(machine(server, path.join(yield* tempDirectory("s3-source"), "journal"), bucket))
      const journal = Context.get(services, Journal.Journal)
      for (let i = 1; i <= 30; i++) yield* journal.append({ namespace: "n", id: "s" }, i - 1, [event(i)])
      assert.equal(yield* Context.get(services, Archiver.Archiver).flush(31), 30)
    }))

  /** A fresh machine on `bucket`: whether its start (which restores) succeeded, and its journal's last seq afterwards. */
  const restoreInto = (bucket: string) =>
    Effect.gen(function*() {
      const directory = path.join(yield* tempDirectory("s3-restore"), "journal")
      const restored = yield* Effect.scoped(Effect.result(Layer.build(machine(server, directory, bucket))))
      const lastSeq = yield* Effect.scoped(Effect.flatMap(Layer.build(FileJournal.layer({ directory })), (c) => Context.get(c, Journal.Journal).lastSeq))
      return { restored, lastSeq }
    })

  test("S3 Archiver: a damaged object: the restore on start fails naming its key, and the fresh journal stays empty", () =>
    Effect.runPromise(quiet(Effect.scoped(Effect.gen(function*() {
      const bucket = yield* isolatedBucket(server)
      yield* archived(bucket)
      const client = new S3Client(s3ClientConfig(server))
      const key = "00000000000000000011-00000000000000000020.msgpack"
      const object = yield* Effect.promise(() => client.send(new GetObjectCommand({ Bucket: bucket, Key: key })))
      const bytes = yield* Effect.promise(() => object.Body!.transformToByteArray())
      bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff
      yield* Effect.promise(() => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes })))
      const { restored, lastSeq } = yield* restoreInto(bucket)
      assert.ok(restored._tag === "Failure", "the start fails")
      assert.match(String((restored.failure as { message?: unknown }).message), new RegExp(`${key} is damaged`))
      assert.equal(lastSeq, 0, "nothing restored locally: the damaged segment is found before any record is applied")
    })))))

  test("S3 Archiver: a missing object: the restore refuses naming the missing range, and restores nothing", () =>
    Effect.runPromise(quiet(Effect.scoped(Effect.gen(function*() {
      const bucket = yield* isolatedBucket(server)
      yield* archived(bucket)
      const client = new S3Client(s3ClientConfig(server))
      yield* Effect.promise(() => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "00000000000000000011-00000000000000000020.msgpack" })))
      const { restored, lastSeq } = yield* restoreInto(bucket)
      assert.ok(restored._tag === "Failure")
      assert.match(String((restored.failure as { message?: unknown }).message), /missing seqs 11\.\.20/)
      assert.equal(lastSeq, 0)
    })))))

  test("S3Archive: a server that is gone fails typed, naming bucket and key and never a credential; back, it works", () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const bucket = yield* isolatedBucket(server)
      const archive = yield* open(Archive.Archive, S3Archive.layer({ bucket, clientConfig: { ...s3ClientConfig(server), maxAttempts: 1 }, timeoutMs: 5_000 }))
      const first = yield* archive.put({ startSeq: 1, endSeq: 2, records: [record(1), record(2)] })
      yield* Effect.acquireRelease(Effect.promise(() => server.stopGateway()), () => Effect.promise(() => server.startGateway()))
      const put = yield* expectError(archive.put({ startSeq: 3, endSeq: 3, records: [record(3)] }), "ArchiveError", bucket, "00000000000000000003-00000000000000000003.msgpack")
      const get = yield* expectError(archive.get(first), "ArchiveError", bucket, first.key)
      const list = yield* expectError(archive.list(), "ArchiveError", bucket)
      for (const error of [put, get, list]) {
        const shown = `${error.message} ${JSON.stringify(error)} ${String(error.cause && JSON.stringify(error.cause))}`
        assert.ok(!shown.includes(server.credentials.secretAccessKey), `no secret key in ${shown}`)
        assert.ok(!shown.includes(server.credentials.accessKeyId), `no access key id in ${shown}`)
      }
      yield* Effect.promise(() => server.startGateway())
      yield* archive.put({ startSeq: 3, endSeq: 3, records: [record(3)] })
      assert.deepEqual((yield* archive.list()).map((r) => r.endSeq), [2, 3])
    }))))

  test("S3Archive: a server that hangs: a call times out after timeoutMs instead of waiting, and an interrupted call is aborted", () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const bucket = yield* isolatedBucket(server)
      const archive = yield* open(Archive.Archive, S3Archive.layer({ bucket, clientConfig: s3ClientConfig(server), timeoutMs: 400 }))
      yield* archive.put({ startSeq: 1, endSeq: 1, records: [record(1)] })
      yield* Effect.acquireRelease(Effect.promise(() => server.pauseGateway()), () => Effect.promise(() => server.resumeGateway()))
      const started = Date.now()
      yield* expectError(archive.list(), "ArchiveError", "no answer within 400 ms", bucket)
      assert.ok(Date.now() - started < 10_000, "the timeout ended the call")
      // An interrupted call is let go at once (its request aborted), not after the client's own timeout.
      const patient = yield* open(Archive.Archive, S3Archive.layer({ bucket, clientConfig: s3ClientConfig(server), timeoutMs: 120_000 }))
      const pending = yield* Effect.forkChild(patient.put({ startSeq: 2, endSeq: 2, records: [record(2)] }))
      yield* Effect.sleep("200 millis")
      const interruptedAt = Date.now()
      yield* Fiber.interrupt(pending)
      assert.ok(Date.now() - interruptedAt < 5_000, "the interrupted call returned at once")
      yield* Effect.promise(() => server.resumeGateway())
      assert.ok((yield* archive.list()).some((r) => r.startSeq === 1), "after the pause the archive answers again")
    }))))

}
