/**
 * The payloads of appends too large for one message: kept, one after the other, in one object of
 * the journal's payload store (`<prefix>_payloads`, opened on first use), written before the
 * message that refers to it (the message is the commit point: an append whose message is not
 * stored leaves an object nothing refers to, deleted when the append is known to have failed,
 * else orphaned), and deleted when a truncation removes its message.
 *
 * @internal
 */
import type { ObjectStore } from "@nats-io/obj"
import * as Effect from "effect/Effect"
import { randomUUID } from "node:crypto"
import { JournalError } from "../../Journal.ts"
import type { NatsClient } from "../NatsClient.ts"
import { bucketProblem, objectStoreProblem, openObjectStore, type StorageSettings } from "./buckets.ts"
import { describeNatsFailure } from "./errors.ts"
import type { StoreNames } from "./names.ts"
import { deleteObject, writeObject } from "./objects.ts"

/** Room kept in a message for everything but the payloads (position, names, headers). */
const OVERHEAD = 8_192

/** What one event adds to a message besides its payload. */
const eventOverhead = (event: { readonly type: string; readonly metadata?: Readonly<Record<string, string>> | undefined }) =>
  48 + event.type.length * 3 + (event.metadata === undefined ? 0 : JSON.stringify(event.metadata).length * 3)

/** The payload store of the journal `names`, and the spilling of large appends into it. */
export const journalPayloads = (client: NatsClient, names: StoreNames, settings: StorageSettings) =>
  Effect.gen(function*() {
    const failed = (method: string, what: string) => (cause: unknown) =>
      new JournalError({ method, message: `Journal.${method}: cannot ${what} (object store ${names.payloadStore} at ${client.servers}): ${describeNatsFailure(cause)}`, cause })
    const what = `payload object store ${names.payloadStore}`
    const store: Effect.Effect<ObjectStore, JournalError> = yield* Effect.cached(
      Effect.flatMap(
        Effect.tryPromise({ try: () => openObjectStore(client.jetstream, names.payloadStore, settings), catch: failed("append", "open the payload store") }),
        ({ store, config }) => {
          const problem = bucketProblem(what, config, [`$O.${names.payloadStore}.C.>`, `$O.${names.payloadStore}.M.>`], settings) ?? objectStoreProblem(what, config, "payloads that journal messages refer to")
          return problem === undefined ? Effect.succeed(store) : Effect.fail(new JournalError({ method: "append", message: `Journal.append: ${problem}` }))
        }
      )
    )

    /**
     * For events too large together for one message: their payloads written as one fresh object,
     * its name and the payloads' lengths; `undefined` when they fit in the message.
     */
    const spill = (
      method: string,
      events: ReadonlyArray<{ readonly type: string; readonly payload: Uint8Array; readonly metadata?: Readonly<Record<string, string>> | undefined }>
    ): Effect.Effect<{ readonly name: string; readonly lengths: ReadonlyArray<number> } | undefined, JournalError> =>
      Effect.suspend(() => {
        const limit = (client.connection.info?.max_payload ?? 1_048_576) - OVERHEAD
        let size = 0
        for (const event of events) size += event.payload.byteLength + eventOverhead(event)
        if (size <= limit) return Effect.succeed(undefined)
        const lengths = events.map((event) => event.payload.byteLength)
        const blob = new Uint8Array(lengths.reduce((sum, n) => sum + n, 0))
        let at = 0
        for (const event of events) {
          blob.set(event.payload, at)
          at += event.payload.byteLength
        }
        const name = randomUUID()
        return Effect.flatMap(store, (objects) =>
          Effect.tryPromise({ try: () => writeObject(objects, name, blob), catch: failed(method, `write the payloads (${blob.byteLength} bytes) to the object ${name}`) }).pipe(
            Effect.as({ name, lengths })
          ))
      })

    /** Deletes the object `name` (a failure only leaves it orphaned: logged, not raised). */
    const remove = (method: string, name: string): Effect.Effect<void> =>
      Effect.flatMap(store, (objects) =>
        Effect.tryPromise({ try: () => deleteObject(objects, name), catch: failed(method, `delete the object ${name}`) })).pipe(
          Effect.catch((error) => Effect.logWarning(error.message))
        )

    return { store, spill, remove }
  })

/** The payload store of one journal. */
export type JournalPayloads = Effect.Success<ReturnType<typeof journalPayloads>>
