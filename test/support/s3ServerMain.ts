/**
 * Runs an S3 server (radosgw, test/support/s3Server.ts) for a whole test run (`scripts/test.mjs`):
 * prints `ANNALS_S3_ENDPOINT=<url>`, `ANNALS_S3_ACCESS_KEY=<key>` and `ANNALS_S3_SECRET_KEY=<key>`
 * once it answers, and stops it (removing its data) when its stdin closes, or on SIGTERM or SIGINT.
 * When radosgw is not installed it prints `skipped: <why>` to stderr and exits 0 at once (the suites
 * then say so themselves, or fail under `CI=true`).
 */
import process from "node:process"
import { missingPrograms, startS3Server } from "./s3Server.ts"
import { serveUntilStdinCloses } from "./serverMain.ts"

const missing = missingPrograms()
if (missing.length > 0) {
  process.stderr.write(`skipped: no S3 server for this run: ${missing.join(", ")} not found on PATH\n`)
  process.exit(0)
}
const server = await startS3Server()
serveUntilStdinCloses(
  [
    `ANNALS_S3_ENDPOINT=${server.endpoint}`,
    `ANNALS_S3_ACCESS_KEY=${server.credentials.accessKeyId}`,
    `ANNALS_S3_SECRET_KEY=${server.credentials.secretAccessKey}`
  ],
  server.stop,
  { onSignals: true }
)
