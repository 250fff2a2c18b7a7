/**
 * The S3 server the S3 suites run against (DESIGN §13), a bucket of its own for each case, and the
 * client configuration for it.
 *
 * - `s3Target()`: the server at `ANNALS_S3_ENDPOINT` (keys `ANNALS_S3_ACCESS_KEY`,
 *   `ANNALS_S3_SECRET_KEY`) when it is set (`scripts/test.mjs` starts one for the whole run, shared
 *   by the three runtimes), otherwise one this process starts the first time a file asks, which lives
 *   until the process ends.
 * - `ownS3Server()`: a server of the calling file's own, whose gateway its tests may stop, start or
 *   pause without disturbing other files; stopped after that file's tests.
 * - When radosgw is not installed, both resolve to `undefined` (register the suites only for a
 *   server) after a line saying the suites were skipped — except under `CI=true`, where a test fails
 *   saying so.
 */
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3"
import { Effect, type Scope } from "effect"
import * as crypto from "node:crypto"
import process from "node:process"
import { after, test } from "node:test"
import { missingPrograms, type S3Server, type S3Target, startS3Server } from "./s3Server.ts"

export type { S3Server, S3Target } from "./s3Server.ts"

/** Whether a server can be started here; if not, says so (a line, or under `CI=true` a failing test). */
const radosgwInstalled = (): boolean => {
  const missing = missingPrograms()
  if (missing.length === 0) return true
  const why = `${missing.join(", ")} not found on PATH (Debian: apt-get install radosgw ceph-mon ceph-osd)`
  if (process.env.CI === "true") {
    test("the S3 server (radosgw) can be started (required under CI=true)", () => {
      throw new Error(`${why}; CI=true requires it`)
    })
  } else {
    process.stdout.write(`skipped: ${why}; the S3 suites of this file do not run\n`)
  }
  return false
}

/** This process's server for `s3Target`: started by the first file that asks, kept until the process ends. */
const local: { server: Promise<S3Server> | undefined } = { server: undefined }

/** The server `ANNALS_S3_ENDPOINT` names (keys `ANNALS_S3_ACCESS_KEY`, `ANNALS_S3_SECRET_KEY`), or `undefined` when it is not set. */
export const s3TargetFromEnv = (): S3Target | undefined => {
  const endpoint = process.env.ANNALS_S3_ENDPOINT
  if (endpoint === undefined || endpoint === "") return undefined
  return {
    name: "radosgw (shared)",
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: process.env.ANNALS_S3_ACCESS_KEY ?? "", secretAccessKey: process.env.ANNALS_S3_SECRET_KEY ?? "" }
  }
}

/** The run's S3 server, or `undefined` (after saying why) when none can be started. */
export const s3Target = async (): Promise<S3Target | undefined> => {
  const shared = s3TargetFromEnv()
  if (shared !== undefined) return shared
  if (!radosgwInstalled()) return undefined
  // Bun and Deno run many files in one process, and a module shared by several files (the runtime
  // suites' layers) asks once: the server lives until the process ends, not until a file's tests do.
  local.server ??= startS3Server({ untilExit: true })
  return local.server
}

/** A server of the calling file's own (its gateway may be stopped or paused), or `undefined` (after saying why) when none can be started. */
export const ownS3Server = async (): Promise<S3Server | undefined> => {
  if (!radosgwInstalled()) return undefined
  const server = await startS3Server()
  after(() => server.stop())
  return server
}

/** The client configuration for `target`: path-style buckets, checksums only where an operation requires them. */
export const s3ClientConfig = (target: S3Target): S3ClientConfig => ({
  endpoint: target.endpoint,
  region: target.region,
  credentials: { ...target.credentials },
  forcePathStyle: true,
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED"
})

/** Runs `body` with a client for `target`, destroyed afterwards. */
const withClient = async <A>(target: S3Target, body: (client: S3Client) => Promise<A>): Promise<A> => {
  const client = new S3Client(s3ClientConfig(target))
  try {
    return await body(client)
  } finally {
    client.destroy()
  }
}

/** Creates a bucket `annals-t-<random>` on `target`. */
const createBucket = (target: S3Target): Promise<string> =>
  withClient(target, async (client) => {
    const bucket = `annals-t-${crypto.randomBytes(6).toString("hex")}`
    await client.send(new CreateBucketCommand({ Bucket: bucket }))
    return bucket
  })

/** Deletes every object in `bucket` (a page of up to 1,000 at a time, until a listing is empty), then the bucket. */
const deleteBucket = (target: S3Target, bucket: string): Promise<void> =>
  withClient(target, async (client) => {
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }))
      const objects = (page.Contents ?? []).map(({ Key }) => ({ Key }))
      if (objects.length === 0) break
      const result = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }))
      const failed = result.Errors ?? []
      if (failed.length > 0) throw new Error(`could not delete ${failed.length} objects of ${bucket}: ${failed[0]!.Key} ${failed[0]!.Code}`)
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }))
  })

/** A fresh bucket on `target`, emptied and deleted when the scope closes. */
export const isolatedBucket = (target: S3Target): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => createBucket(target)), (bucket) => Effect.promise(() => deleteBucket(target, bucket)))
