/**
 * The single-writer lock of a journal directory (src/file/internal/directoryLock.ts):
 *
 * - race: child processes on the runtime running this file try at once to take over a stale
 *   `LOCK` (its owner has exited); at no time do two of them hold it, at least one does, and no
 *   file of the lock is left behind;
 * - on the simulated file system: an empty, garbage or older-format stale `LOCK` is taken over;
 *   takeover markers of dead processes (nested too, or guarding nothing any more) are removed; a
 *   takeover killed at any step leaves nothing that blocks the next one; a live owner or a live
 *   taker is refused with a message naming pid and host; release removes only our own `LOCK`; a
 *   racer whose temp file is removed before it links writes it again, and the journal's recovery
 *   does not fail on a temp file that vanishes while it cleans up;
 * - `linkSync` of the simulated file system: exclusive, one inode under two names, the new name
 *   durable only after a directory fsync.
 *
 * ANNALS_LOCK_RUNS sets the number of race rounds (default 5).
 */
import { Effect } from "effect"
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { threadId } from "node:worker_threads"
import { lockDirectory } from "../src/file/internal/directoryLock.ts"
import type { FileIo } from "../src/file/internal/fileIo.ts"
import { open } from "../src/file/internal/fileJournal.ts"
import { childCommand, withTimeout } from "./support/childProcess.ts"
import { prng } from "./support/ledger.ts"
import { SimulatedFs } from "./support/simulatedFs.ts"

const RUNS = Number(process.env["ANNALS_LOCK_RUNS"] ?? 5)
const CHILDREN = 8
const HOLD_MS = 200

const HOST = os.hostname()
const DIR = "/journal"
const LOCK = `${DIR}/LOCK`

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array | undefined) => (data === undefined ? undefined : new TextDecoder().decode(data))
const record = (owner: { readonly pid: number; readonly host: string; readonly nonce?: string }) => bytes(JSON.stringify(owner))

let exited: Promise<number> | undefined
/** The pid of a process that has exited (a child of this one, waited for). */
const deadPid = (): Promise<number> =>
  exited ??= new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--version"], { stdio: "ignore" })
    child.on("error", reject)
    child.on("close", () => resolve(child.pid!))
  })

/** A simulated file system with the journal directory created. */
const fresh = () => {
  const sim = new SimulatedFs()
  sim.mkdirSync(DIR, { recursive: true })
  return sim
}

const names = (sim: SimulatedFs) => sim.readdirSync(DIR)

/** The lock's record in `LOCK` now. */
const lockRecord = (sim: SimulatedFs) => JSON.parse(text(sim.contentOf(LOCK)) ?? "null") as { pid: number; host: string; nonce: string }

const lockError = (io: FileIo): Error => {
  try {
    lockDirectory(io, DIR)()
  } catch (error) {
    assert.ok(error instanceof Error)
    return error
  }
  return assert.fail("the lock should be refused")
}

// ---------------------------------------------------------------------------------------------
// Race: processes taking over one stale lock at once

interface ChildResult {
  readonly pid: number
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Spawns one lock child; resolves `ready` when it waits for the start line, `done` when it has exited. */
const startChild = (directory: string, log: string) => {
  const { command, args } = childCommand("lockChild", [directory, log, String(HOLD_MS)])
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } })
  let stdout = ""
  let stderr = ""
  let onReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => (onReady = resolve))
  child.stdout!.setEncoding("utf8")
  child.stdout!.on("data", (chunk: string) => {
    stdout += chunk
    if (stdout.startsWith("ready\n")) onReady()
  })
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (chunk: string) => (stderr += chunk))
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code) => {
      onReady()
      resolve({ pid: child.pid!, code, stdout: stdout.replace(/^ready\n/, ""), stderr })
    })
  })
  return { child, ready, done }
}

const raceRound = async (round: number) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "annals-lock-race-"))
  const children: Array<ReturnType<typeof startChild>> = []
  try {
    const directory = path.join(root, "journal")
    const log = path.join(root, "holders.log")
    fs.mkdirSync(directory)
    fs.writeFileSync(log, "")
    // A stale lock as this version leaves it (with a nonce), or as an older one did (without).
    const pid = await deadPid()
    const stale = round % 2 === 0 ? { pid, host: HOST, nonce: randomUUID() } : { pid, host: HOST }
    fs.writeFileSync(path.join(directory, "LOCK"), JSON.stringify(stale))
    const context = `round ${round} (stale LOCK ${JSON.stringify(stale)})`

    for (let i = 0; i < CHILDREN; i++) children.push(startChild(directory, log))
    await withTimeout(Promise.all(children.map((c) => c.ready)), 60_000, `${context}: the children to start`)
    const start = Date.now() + 100
    for (const { child } of children) child.stdin!.write(`go ${start}\n`)
    const results = await withTimeout(Promise.all(children.map((c) => c.done)), 60_000, `${context}: the children to finish`)

    // Appends to the log are atomic and in order: holders that never overlap alternate enter/exit.
    const lines = fs.readFileSync(log, "utf8").split("\n").filter((line) => line !== "")
    const holders: Array<number> = []
    const overlap = `${context}: two children held the lock at once:\n${lines.join("\n")}`
    lines.forEach((line, i) => {
      const [what, holder] = line.split(" ")
      if (i % 2 === 0) {
        assert.equal(what, "enter", overlap)
        holders.push(Number(holder))
      } else {
        assert.deepEqual([what, Number(holder)], ["exit", holders[holders.length - 1]], overlap)
      }
    })
    assert.equal(lines.length % 2, 0, `${context}: a holder did not exit:\n${lines.join("\n")}`)
    const locked = new Set<number>()
    for (const result of results) {
      const what = `${context}: child ${result.pid} (code ${result.code}, stdout ${JSON.stringify(result.stdout)}, stderr ${JSON.stringify(result.stderr)})`
      assert.equal(result.code, 0, what)
      if (result.stdout === "locked\n") locked.add(result.pid)
      else assert.match(result.stdout, /^refused .*(is locked by process \d+ on host|has been taking it over)/, what)
    }
    assert.ok(locked.size >= 1, `${context}: no child got the lock`)
    const sorted = (pids: Iterable<number>) => [...pids].sort((a, b) => a - b)
    assert.deepEqual(sorted(holders), sorted(locked), `${context}: the children that said "locked" are the ones in the log`)
    assert.deepEqual(fs.readdirSync(directory), [], `${context}: files of the lock left behind`)
  } finally {
    for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    await Promise.all(children.map((c) => c.done.catch(() => undefined)))
    fs.rmSync(root, { recursive: true, force: true })
  }
}

test(`directory lock: ${CHILDREN} processes taking over a stale lock at once never hold it together, ${RUNS} rounds`, async () => {
  for (let round = 0; round < RUNS; round++) await raceRound(round)
})

// ---------------------------------------------------------------------------------------------
// In process, on the simulated file system

test("directory lock: a stale LOCK that is empty, garbage, or an older version's with a dead pid is taken over", async () => {
  const pid = await deadPid()
  for (const content of ["", "{\"pid\":", "garbage", "null", JSON.stringify({ pid, host: HOST })]) {
    const sim = fresh()
    sim.writeDurably(LOCK, bytes(content))
    const release = lockDirectory(sim, DIR)
    assert.deepEqual(names(sim), ["LOCK"], `LOCK was ${JSON.stringify(content)}`)
    const mine = lockRecord(sim)
    assert.deepEqual([mine.pid, mine.host], [process.pid, HOST])
    assert.match(mine.nonce, /^[0-9a-f-]{36}$/)
    release()
    assert.deepEqual(names(sim), [], `LOCK was ${JSON.stringify(content)}: released`)
  }
})

test("directory lock: takeover markers of dead processes are removed, nested or guarding a LOCK that is gone", async () => {
  const pid = await deadPid()
  const [n, x, y, z] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()]
  // A stale LOCK n, whose taker x died mid-takeover, and x's marker's taker y died too.
  const sim = fresh()
  sim.writeDurably(LOCK, record({ pid, host: HOST, nonce: n }))
  sim.writeDurably(`${DIR}/LOCK.takeover-${n}`, record({ pid, host: HOST, nonce: x }))
  sim.writeDurably(`${DIR}/LOCK.takeover-${x}`, record({ pid, host: HOST, nonce: y }))
  // A marker whose taker z died after removing the LOCK it guarded: nothing will meet it again; and
  // z's marker is guarded by one whose taker w died too (named so that the scan meets z's first).
  const [q, w] = ["00000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-8fff-ffffffffffff"]
  sim.writeDurably(`${DIR}/LOCK.takeover-${q}`, record({ pid, host: HOST, nonce: z }))
  sim.writeDurably(`${DIR}/LOCK.takeover-${z}`, record({ pid, host: HOST, nonce: w }))
  // An unreadable marker (damage) is stale too.
  sim.writeDurably(`${DIR}/LOCK.takeover-${randomUUID()}`, bytes(""))
  const release = lockDirectory(sim, DIR)
  assert.deepEqual(names(sim), ["LOCK"])
  assert.equal(lockRecord(sim).pid, process.pid)
  release()
  assert.deepEqual(names(sim), [])
})

test("directory lock: a takeover killed at any step leaves nothing that blocks the next one", async () => {
  const pid = await deadPid()
  const n = randomUUID()
  for (let at = 0;; at++) {
    const sim = fresh()
    sim.writeDurably(LOCK, record({ pid, host: HOST, nonce: n }))
    sim.writeDurably(`${DIR}/LOCK.takeover-${n}`, record({ pid, host: HOST, nonce: randomUUID() }))
    // The process dies at its `at`-th file operation: that one and every later one fail.
    let calls = 0
    const dying = new Proxy(sim, {
      get: (target, key) => {
        const member: unknown = Reflect.get(target, key)
        if (typeof member !== "function") return member
        return (...args: Array<unknown>) => {
          if (calls++ >= at) throw new Error("killed")
          return member(...args)
        }
      }
    })
    let survived = false
    try {
      lockDirectory(dying, DIR)()
      survived = true
    } catch (error) {
      assert.equal((error as Error).message, "killed", `killed at operation ${at}`)
    }
    // The next process (same pid: the killed one counts as dead) takes the lock and cleans up;
    // only temp files remain, which the journal's recovery removes.
    const release = lockDirectory(sim, DIR)
    assert.equal(lockRecord(sim).pid, process.pid, `killed at operation ${at}`)
    release()
    assert.deepEqual(names(sim).filter((name) => !name.endsWith(".tmp")), [], `killed at operation ${at}: files left`)
    if (survived) {
      assert.ok(at > 10, `the takeover took only ${at} operations`)
      break
    }
  }
})

test("directory lock: a lock after a power loss at any point of taking it is taken over", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const sim = fresh()
    const release = lockDirectory(sim, DIR)
    const after = sim.crash(prng(seed))
    release()
    const again = lockDirectory(after, DIR)
    assert.equal(lockRecord(after).pid, process.pid, `seed ${seed}`)
    again()
    assert.deepEqual(names(after).filter((name) => !name.endsWith(".tmp")), [], `seed ${seed}: files left`)
  }
})

test("directory lock: a live owner is refused, naming the directory, the lock file, pid and host", async () => {
  const pid = await deadPid()
  const owners = [
    { pid: process.ppid, host: HOST, nonce: randomUUID() },
    { pid: process.ppid, host: HOST }, // an older version's LOCK
    { pid, host: "elsewhere.example", nonce: randomUUID() } // liveness cannot be told on another host
  ]
  for (const owner of owners) {
    const sim = fresh()
    const content = record(owner)
    sim.writeDurably(LOCK, content)
    const error = lockError(sim)
    assert.ok(error.message.includes(`process ${owner.pid} on host ${owner.host}`), error.message)
    assert.ok(error.message.includes(DIR) && error.message.includes(LOCK), error.message)
    assert.deepEqual(names(sim), ["LOCK"], "nothing else is left")
    assert.deepEqual(sim.contentOf(LOCK), content, "the LOCK is untouched")
  }
})

test("directory lock: a live taker's marker makes us wait, then read the LOCK it leaves", async () => {
  const pid = await deadPid()
  const n = randomUUID()
  const marker = `${DIR}/LOCK.takeover-${n}`
  const taker = { pid: process.ppid, host: HOST, nonce: randomUUID() }
  const sim = fresh()
  sim.writeDurably(LOCK, record({ pid, host: HOST, nonce: n }))
  sim.writeDurably(marker, record(taker))
  // The taker finishes while we wait: its LOCK replaces the stale one, its marker goes.
  let markerReads = 0
  const io: FileIo = {
    ...sim,
    openSync: (file, flags) => {
      if (file === marker && ++markerReads === 3) {
        sim.unlinkSync(LOCK)
        sim.writeDurably(LOCK, record(taker))
        sim.unlinkSync(marker)
      }
      return sim.openSync(file, flags)
    }
  }
  const error = lockError(io)
  assert.ok(error.message.includes(`is locked by process ${taker.pid} on host ${HOST}`), error.message)
  assert.deepEqual(names(sim), ["LOCK"])
})

test("directory lock: a live taker that does not finish makes us give up after a while, naming it", async () => {
  const pid = await deadPid()
  const n = randomUUID()
  const sim = fresh()
  sim.writeDurably(LOCK, record({ pid, host: HOST, nonce: n }))
  sim.writeDurably(`${DIR}/LOCK.takeover-${n}`, record({ pid: process.ppid, host: HOST, nonce: randomUUID() }))
  const started = Date.now()
  const error = lockError(sim)
  assert.ok(Date.now() - started >= 1000, `gave up after ${Date.now() - started} ms`)
  assert.ok(error.message.includes(`process ${process.ppid} on host ${HOST}`) && error.message.includes("taking it over"), error.message)
  assert.deepEqual(names(sim), ["LOCK", `LOCK.takeover-${n}`])
})

test("directory lock: a second lock in this process is refused; release removes only our own LOCK", () => {
  const sim = fresh()
  const release = lockDirectory(sim, DIR)
  assert.match(lockError(sim).message, /already open in this process/)
  // Someone replaced our LOCK (a live process's now): release leaves it.
  const other = record({ pid: process.ppid, host: HOST, nonce: randomUUID() })
  sim.unlinkSync(LOCK)
  sim.writeDurably(LOCK, other)
  release()
  assert.deepEqual(sim.contentOf(LOCK), other)
  // The release was ours all the same: the next attempt reads the LOCK, not our own hold.
  assert.match(lockError(sim).message, new RegExp(`locked by process ${process.ppid}`))
})

test("directory lock: the directory reached by another path, or held by another thread of this process, is refused", () => {
  const sim = fresh()
  const release = lockDirectory(sim, DIR)
  // The same directory under another name (a symbolic link, a bind mount; here "/journal/."): not
  // in this thread's set of open directories, but the LOCK there carries a nonce this thread holds.
  assert.throws(() => lockDirectory(sim, `${DIR}/.`), /already open in this process \(by another path to it/)
  release()
  // A LOCK naming this process but another (worker) thread: that thread may be alive.
  sim.writeDurably(LOCK, bytes(JSON.stringify({ pid: process.pid, host: HOST, thread: threadId + 1, nonce: randomUUID() })))
  assert.match(lockError(sim).message, new RegExp(`already open in this process \\(in thread ${threadId + 1}`))
  // This process and thread, a nonce this thread does not hold: a previous process with our pid.
  sim.unlinkSync(LOCK)
  sim.writeDurably(LOCK, bytes(JSON.stringify({ pid: process.pid, host: HOST, thread: threadId, nonce: randomUUID() })))
  lockDirectory(sim, DIR)()
})

test("directory lock: a racer whose temp file is removed before it links writes it again", () => {
  const sim = fresh()
  let removed = false
  const io: FileIo = {
    ...sim,
    linkSync: (existing, newPath) => {
      // The holder's recovery removes every *.tmp, ours included.
      if (!removed) sim.unlinkSync(existing)
      removed = true
      sim.linkSync(existing, newPath)
    }
  }
  const release = lockDirectory(io, DIR)
  assert.deepEqual(names(sim), ["LOCK"])
  assert.equal(lockRecord(sim).pid, process.pid)
  release()
})

test("directory lock: the journal's recovery does not fail on a temp file that vanishes while it cleans up", async () => {
  const sim = fresh()
  // A racer's temp file, listed and then removed by the racer before the recovery removes it.
  const io: FileIo = { ...sim, readdirSync: (directory) => [...sim.readdirSync(directory), `LOCK.${randomUUID()}.tmp`] }
  await Effect.runPromise(Effect.scoped(open({ directory: DIR, durability: "os" }, io)))
  assert.deepEqual(names(sim).filter((name) => name.startsWith("LOCK")), [])
})

// ---------------------------------------------------------------------------------------------
// linkSync of the simulated file system

test("simulated fs: linkSync gives a file a second name exclusively, durable after a directory fsync", () => {
  const sim = fresh()
  const fd = sim.openSync(`${DIR}/a`, "wx")
  sim.writeSync(fd, bytes("hello"), 0, 5, 0)
  sim.fsyncSync(fd)
  sim.closeSync(fd)
  sim.linkSync(`${DIR}/a`, `${DIR}/b`)
  assert.equal(text(sim.contentOf(`${DIR}/b`)), "hello")
  const code = (run: () => unknown) => {
    try {
      run()
    } catch (error) {
      return (error as { code?: string }).code
    }
    return undefined
  }
  assert.equal(code(() => sim.linkSync(`${DIR}/a`, `${DIR}/b`)), "EEXIST")
  assert.equal(code(() => sim.linkSync(`${DIR}/missing`, `${DIR}/c`)), "ENOENT")
  assert.equal(code(() => sim.linkSync(`${DIR}/a`, "/nowhere/c")), "ENOENT")
  // One inode: a write through one name is seen through the other; unlinking one keeps the other.
  const fdB = sim.openSync(`${DIR}/b`, "r+")
  sim.writeSync(fdB, bytes("J"), 0, 1, 0)
  sim.closeSync(fdB)
  assert.equal(text(sim.contentOf(`${DIR}/a`)), "Jello")
  // Not durable before a directory fsync (the content of `a` is, as of its fsync).
  assert.deepEqual(sim.crash().readdirSync(DIR), [])
  const dir = sim.openSync(DIR, "r")
  sim.fsyncSync(dir)
  sim.closeSync(dir)
  sim.unlinkSync(`${DIR}/a`)
  const after = sim.crash()
  assert.deepEqual(after.readdirSync(DIR), ["a", "b"])
  assert.equal(text(after.contentOf(`${DIR}/b`)), "hello")
  assert.equal(text(sim.contentOf(`${DIR}/b`)), "Jello")
  assert.deepEqual(sim.readdirSync(DIR), ["b"])
})
