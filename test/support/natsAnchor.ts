/**
 * A stream kept on the machine's NATS server for the whole test run (started by `scripts/test.mjs`,
 * like `pgServer.ts`): nats-server 2.9 removes an account's store directory when its last stream is
 * deleted, and a stream another test file creates at that moment fails ("error creating store for
 * stream": the directory it was making went away). The test files run concurrently and delete their
 * prefixes' streams as their cases end, so without this stream the account is emptied many times a
 * run. Prints `ANNALS_NATS_ANCHOR=<stream>` once it exists and deletes it when stdin closes; exits at
 * once, printing nothing, when no server answers (the NATS suites then say so themselves).
 */
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import * as crypto from "node:crypto"
import { natsUrl } from "./nats.ts"
import { serveUntilStdinCloses } from "./serverMain.ts"

const connection = await connect({ servers: natsUrl(), timeout: 3_000, reconnect: false }).catch(() => undefined)
if (connection === undefined) process.exit(0)
const manager = await jetstreamManager(connection).catch(() => undefined)
if (manager === undefined) process.exit(0)
const name = `annals_test_anchor_${crypto.randomBytes(4).toString("hex")}`
await manager.streams.add({ name, subjects: [`${name}.>`], max_msgs: 1 })
serveUntilStdinCloses([`ANNALS_NATS_ANCHOR=${name}`], async () => {
  await manager.streams.delete(name)
  await connection.close()
})
