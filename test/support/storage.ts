/**
 * Storage for runtime tests, over the memory layers and over the file layers (FileJournal +
 * FileSnapshotStore + DirectoryArchive in a temporary directory), and Journal wrappers that hold
 * appends in flight or make them fail after they committed.
 */
import { Effect, Layer, type Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as path from "node:path"
import { test } from "node:test"
import { Archive, Codec, Journal, SnapshotStore } from "../../src/index.ts"
import { DirectoryArchive, FileJournal, FileSnapshotStore } from "../../src/file/index.ts"
import type { LedgerEvent } from "./ledger.ts"
import { ledger } from "./ledger.ts"
import { tempDirectory } from "./tempDirectory.ts"

/** The services of one storage location. */
export type Stores = Journal.Journal | SnapshotStore.SnapshotStore | Archive.Archive

/**
 * One storage location. `layers(journal)` opens the journal of that name with the location's
 * snapshot store and archive (`options.archive` names another archive there); opening the same name
 * again (after the first is closed) reaches the same data, on the memory layers too, so a test can
 * "restart" over either.
 */
export interface Location {
  readonly layers: (
    journal?: string,
    options?: { readonly keep?: number; readonly archive?: string }
  ) => Layer.Layer<Stores, unknown>
}

/** How to make a fresh location. */
export interface StorageFixture {
  readonly name: string
  readonly location: Effect.Effect<Location, never, Scope.Scope>
}

const memory: StorageFixture = {
  name: "memory",
  location: Effect.sync(() => {
    const journals = new Map<string, Journal.Journal>()
    const archives = new Map<string, Map<string, Uint8Array>>()
    const objectsOf = (name: string) => {
      let objects = archives.get(name)
      if (objects === undefined) archives.set(name, objects = new Map())
      return objects
    }
    let snapshots: SnapshotStore.SnapshotStore | undefined
    return {
      layers: (name = "main", options) =>
        Layer.mergeAll(
          Layer.effect(
            Journal.Journal,
            Effect.suspend(() => {
              const existing = journals.get(name)
              return existing !== undefined
                ? Effect.succeed(existing)
                : Effect.tap(Journal.makeMemory, (journal) => Effect.sync(() => journals.set(name, journal)))
            })
          ),
          Layer.effect(
            SnapshotStore.SnapshotStore,
            Effect.suspend(() =>
              snapshots !== undefined
                ? Effect.succeed(snapshots)
                : Effect.tap(SnapshotStore.makeMemory(options), (store) => Effect.sync(() => snapshots = store))
            )
          ),
          Layer.effect(Archive.Archive, Archive.make(Archive.makeObjectStoreMemory(objectsOf(options?.archive ?? "archive"))))
        )
    }
  })
}

const file: StorageFixture = {
  name: "file",
  location: Effect.map(tempDirectory("runtime"), (directory) => ({
    layers: (name = "main", options) =>
      Layer.mergeAll(
        FileJournal.layer({ directory: path.join(directory, name) }),
        FileSnapshotStore.layer({ directory: path.join(directory, "snapshots"), keep: options?.keep }),
        DirectoryArchive.layer({ directory: path.join(directory, options?.archive ?? "archive") })
      )
  }))
}

/** The memory layers and the file layers. */
export const fixtures: ReadonlyArray<StorageFixture> = [memory, file]

/** Registers `body` once per fixture, run in a scope under a TestClock. */
export const eachStorage = (name: string, body: (location: Location) => Effect.Effect<unknown, unknown, Scope.Scope>) => {
  for (const fixture of fixtures) {
    test(`${name} [${fixture.name}]`, () =>
      Effect.runPromise(
        Effect.gen(function*() {
          yield* body(yield* fixture.location)
        }).pipe(Effect.scoped, Effect.provide(TestClock.layer()))
      ))
  }
}

/** Encodes ledger events for a raw `journal.append`. */
export const ledgerData = (id: string, events: ReadonlyArray<LedgerEvent>) =>
  Effect.orDie(Codec.encodeEvents(ledger().eventCodec, { namespace: "ledger", id }, events))

/** Every record of the journal (`replayFrom(0)`). */
export const replayAll = (journal: Journal.Journal) => Stream.runCollect(journal.replayFrom(0))

/**
 * A view of `journal` in which `appendInFlight` appends at once — so later appends conflict with it —
 * but leaves the new records out of `read` and `version` for `millis` of real time, as a journal
 * does while the append waits for its fdatasync (DESIGN §2).
 */
export const withAppendInFlight = (journal: Journal.Journal) => {
  const hidden = new Map<string, number>() // stream key → highest visible version
  const key = (stream: Journal.StreamRef) => `${stream.namespace}\u0000${stream.id}`
  const view: Journal.Journal = {
    ...journal,
    read: (stream, options) => {
      const visible = hidden.get(key(stream))
      const records = journal.read(stream, options)
      return visible === undefined ? records : Stream.filter(records, (r) => r.version <= visible)
    },
    version: (stream) => Effect.map(journal.version(stream), (v) => Math.min(v, hidden.get(key(stream)) ?? v))
  }
  const appendInFlight = (stream: Journal.StreamRef, expected: Journal.ExpectedVersion, events: ReadonlyArray<Journal.EventData>, millis: number) =>
    Effect.gen(function*() {
      const before = yield* journal.version(stream)
      const result = yield* journal.append(stream, expected, events)
      hidden.set(key(stream), before)
      setTimeout(() => hidden.delete(key(stream)), millis)
      return result
    })
  return { view, appendInFlight }
}
