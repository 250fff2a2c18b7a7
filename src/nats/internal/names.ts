/**
 * The names of one annals store on NATS, and annals names encoded into subject tokens and KV keys.
 *
 * A store under `prefix` (option, default `annals`) has the JetStream stream `<prefix>_journal`
 * (subjects `<prefix>.journal.>`), the KV buckets `<prefix>_snapshots` and `<prefix>_cursors`, and
 * the object stores `<prefix>_payloads` (payloads of appends too large for one message),
 * `<prefix>_states` (snapshot states too large for one KV value) and `<prefix>_artifacts`
 * (projection export artifacts), so prefixes isolate tenants on one server.
 *
 * `token` encodes any string into one subject token that is also a valid KV key token: letters,
 * digits, `-` and `_` stay, every other UTF-8 byte becomes `=XX` (hex), so no name can hold a `.`,
 * `*` or `>` (no wildcard or extra token) and every token decodes back (`fromToken`). A token
 * longer than `MAX_TOKEN` is replaced by `==` and the SHA-256 of the name (`==` never appears in an
 * encoded name): subjects stay short, and the name itself travels in the message or value.
 *
 * @internal
 */
import { createHash } from "node:crypto"

/** The default prefix. */
export const DEFAULT_PREFIX = "annals"

/** The longest encoded token kept as it is. */
export const MAX_TOKEN = 240

/** What is wrong with `prefix`, if anything. */
export const prefixProblem = (prefix: unknown): string | undefined =>
  typeof prefix !== "string" || !/^[A-Za-z0-9_-]{1,32}$/.test(prefix)
    ? `prefix must be 1 to 32 characters of A-Z, a-z, 0-9, "_" and "-", got ${JSON.stringify(prefix)}`
    : undefined

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })
const KEPT = /[A-Za-z0-9_-]/

/** `name` as one subject token (see the module doc). */
export const token = (name: string): string => {
  let out = ""
  for (const char of name) {
    if (KEPT.test(char)) out += char
    else for (const byte of encoder.encode(char)) out += `=${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return out.length <= MAX_TOKEN ? out : `==${createHash("sha256").update(name).digest("hex")}`
}

/** The name `token` encoded, or `undefined` for a hashed or malformed token. */
export const fromToken = (encoded: string): string | undefined => {
  if (encoded.startsWith("==") || !/^(?:[A-Za-z0-9_-]|=[0-9A-F]{2})*$/.test(encoded)) return undefined
  const bytes: Array<number> = []
  for (let i = 0; i < encoded.length;) {
    if (encoded[i] === "=") {
      bytes.push(parseInt(encoded.slice(i + 1, i + 3), 16))
      i += 3
    } else {
      bytes.push(encoded.charCodeAt(i))
      i++
    }
  }
  try {
    return decoder.decode(new Uint8Array(bytes))
  } catch {
    return undefined
  }
}

/** The names of the store under `prefix` (validated). */
export const storeNames = (prefix: string) => ({
  /** The JetStream stream of the journal. */
  journalStream: `${prefix}_journal`,
  /** Every subject of the journal. */
  journalSubjects: `${prefix}.journal.>`,
  /** The subject of one annals stream's messages. */
  streamSubject: (namespace: string, id: string) => `${prefix}.journal.s.${token(namespace)}.${token(id)}`,
  /** Every annals stream's subject (what replays read). */
  streamSubjects: `${prefix}.journal.s.>`,
  /** The subject of the journal's position messages (checkpoint, truncation). */
  metaSubject: `${prefix}.journal.m`,
  /** The object store of the payloads of appends too large for one message. */
  payloadStore: `${prefix}_payloads`,
  /** The KV bucket of snapshots. */
  snapshotBucket: `${prefix}_snapshots`,
  /** The object store of large snapshot states. */
  stateStore: `${prefix}_states`,
  /** The KV bucket of cursors. */
  cursorBucket: `${prefix}_cursors`,
  /** The object store of projection export artifacts. */
  artifactStore: `${prefix}_artifacts`
})

/** The names of one store. */
export type StoreNames = ReturnType<typeof storeNames>
