/**
 * Snapshots to and from the members of a stream's snapshot set (see `snapshotScripts.ts`):
 * `<version>:<seq>:<timestamp>:<schemaVersion>:<state as base64>`.
 *
 * @internal
 */
import { Buffer } from "node:buffer"
import type { Snapshot } from "../../SnapshotStore.ts"
import { base64 } from "./journalEntries.ts"
import { base64Size, type Limits, sizeOf, sizeProblem, sum } from "./limits.ts"

/** The member that stores `snapshot`, or why it cannot be sent (too large), found before it is built. */
export const toMember = (snapshot: Snapshot, limits: Limits): { readonly member: string } | { readonly problem: string } => {
  const header = `${snapshot.version}:${snapshot.seq}:${snapshot.timestamp}:${snapshot.schemaVersion}:`
  const problem = sizeProblem(`its state of ${snapshot.state.byteLength} bytes`, sum([sizeOf(header), base64Size(snapshot.state.byteLength)]), limits)
  return problem === undefined ? { member: header + base64(snapshot.state) } : { problem }
}

const HEADER = /^(\d{1,16}):(\d{1,16}):(\d{1,16}):(\d{1,16}):/
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * The snapshot of stream `namespace`/`id` a member stores, or a sentence naming what is wrong with
 * it (`where` says which key holds it).
 */
export const fromMember = (member: string, namespace: string, id: string, where: string): Snapshot | string => {
  const header = HEADER.exec(member)
  const numbers = (header ?? []).slice(1, 5).map(Number)
  const state = header === null ? "" : member.slice(header[0].length)
  if (header === null || !numbers.every(Number.isSafeInteger) || state.length % 4 !== 0 || !BASE64.test(state)) {
    return `a snapshot in ${where} is damaged: ${JSON.stringify(member.length > 80 ? `${member.slice(0, 80)}…` : member)} is not version:seq:timestamp:schemaVersion:base64`
  }
  const [version, seq, timestamp, schemaVersion] = numbers as [number, number, number, number]
  return { namespace, id, version, seq, timestamp, schemaVersion, state: new Uint8Array(Buffer.from(state, "base64")) }
}
