/**
 * Run as a child process by package-resolution.test.ts: prints whether `annals`, `annals/file`, `annals/testing`,
 * `annals/postgres`, `annals/s3`, `annals/redis` and `annals/nats` resolve to this repository's own `src` (the very modules a relative import loads) or elsewhere.
 */
import { Journal } from "annals"
import { FileJournal } from "annals/file"
import { NatsClient } from "annals/nats"
import { PgSnapshotStore } from "annals/postgres"
import { RedisClient } from "annals/redis"
import { S3Archive } from "annals/s3"
import { AggregateSpec } from "annals/testing"
import * as file from "../../src/file/index.ts"
import * as core from "../../src/index.ts"
import * as nats from "../../src/nats/index.ts"
import * as postgres from "../../src/postgres/index.ts"
import * as redis from "../../src/redis/index.ts"
import * as s3 from "../../src/s3/index.ts"
import * as testing from "../../src/testing/index.ts"

console.log(JSON.stringify({
  annals: Journal === core.Journal,
  "annals/file": FileJournal === file.FileJournal,
  "annals/testing": AggregateSpec === testing.AggregateSpec,
  "annals/postgres": PgSnapshotStore === postgres.PgSnapshotStore,
  "annals/s3": S3Archive === s3.S3Archive,
  "annals/redis": RedisClient === redis.RedisClient,
  "annals/nats": NatsClient === nats.NatsClient
}))
