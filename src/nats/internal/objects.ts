/**
 * Values too large for one message (snapshot states, the payloads of a large append) in an object
 * store (`@nats-io/obj`): written whole under a fresh name, read whole (the client checks the
 * object's SHA-256), deleted when nothing refers to them.
 *
 * A read of an object that a concurrent put dropped may find it gone, or stop receiving chunks when
 * they are purged under it (then the object reads as deleted); both read as `undefined` (the caller
 * reads the stream's value again).
 *
 * @internal
 */
import type { ObjectStore } from "@nats-io/obj"

const IDLE = Symbol("idle")

/** How long a read waits for a chunk before it asks whether the object is still there. */
const IDLE_MS = 250

/** `promise`, or `IDLE` when it has not settled after `ms`. */
const orIdle = <A>(promise: Promise<A>, ms: number): Promise<A | typeof IDLE> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([promise, new Promise<typeof IDLE>((resolve) => (timer = setTimeout(() => resolve(IDLE), ms)))]).finally(() =>
    clearTimeout(timer)
  )
}

/** Stores `data` as the object `name`. */
export const writeObject = async (store: ObjectStore, name: string, data: Uint8Array): Promise<void> => {
  await store.putBlob({ name }, data)
}

/**
 * The bytes of the object `name`, or `undefined` when it is missing, or was deleted while being read
 * (a read that waits for a chunk asks every `IDLE_MS` whether the object is still the one it reads).
 */
export const readObject = async (store: ObjectStore, name: string): Promise<Uint8Array | undefined> => {
  const object = await store.get(name)
  if (object === null) return undefined
  // Settles when the client has read every chunk and checked the digest; handled at once, so that a
  // failure is never an unhandled rejection when the read below stops first.
  const checked = object.error.then(() => null, (cause: unknown) => cause ?? new Error("the object read failed"))
  const reader = object.data.getReader()
  const parts: Array<Uint8Array> = []
  let size = 0
  const stop = () => reader.cancel().catch(() => undefined)
  try {
    for (;;) {
      const pending = reader.read()
      let next = await orIdle(pending, IDLE_MS)
      while (next === IDLE) {
        const info = await store.info(name)
        if (info === null || info.deleted || info.nuid !== object.info.nuid) {
          await stop()
          return undefined
        }
        next = await orIdle(pending, IDLE_MS)
      }
      if (next.done) break
      parts.push(next.value)
      size += next.value.length
    }
  } catch (cause) {
    await stop()
    throw cause
  }
  const failed = await checked
  if (failed !== null) throw failed
  const state = new Uint8Array(size)
  let at = 0
  for (const part of parts) {
    state.set(part, at)
    at += part.length
  }
  return state
}

/** Deletes the object `name` (a no-op when it is gone). */
export const deleteObject = async (store: ObjectStore, name: string): Promise<void> => {
  await store.delete(name)
}
