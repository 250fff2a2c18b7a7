/**
 * The simulated file system the crash tests run the file layers on: that its power-loss model
 * keeps exactly what was made durable (file content by fsync, names by a directory fsync), that a
 * crash keeps a prefix of the rest with at most the last write torn, that its errors look like
 * `node:fs` errors, and that faults fire as configured and repeatably for a seed.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import { readWholeFile, replaceFileDurably, writeAll } from "../src/file/internal/fileIo.ts"
import { prng } from "./support/ledger.ts"
import { type FaultConfig, SimulatedFs, SimulatedFsError } from "./support/simulatedFs.ts"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array | undefined) => data === undefined ? undefined : new TextDecoder().decode(data)

const DIR = "/data"

/** A file system with `/data` created. */
const fresh = (faults?: FaultConfig) => {
  const fs = new SimulatedFs({ faults })
  fs.mkdirSync(DIR, { recursive: true })
  return fs
}

const fsyncDir = (fs: SimulatedFs, dir = DIR) => {
  const fd = fs.openSync(dir, "r")
  fs.fsyncSync(fd)
  fs.closeSync(fd)
}

/** Creates `name` with `content`, optionally fsyncing the file and the directory. */
const create = (fs: SimulatedFs, name: string, content: string, sync: { file: boolean; dir: boolean }) => {
  const fd = fs.openSync(`${DIR}/${name}`, "wx")
  writeAll(fs, fd, bytes(content), 0)
  if (sync.file) fs.fsyncSync(fd)
  fs.closeSync(fd)
  if (sync.dir) fsyncDir(fs)
}

const code = (run: () => unknown): string | undefined => {
  try {
    run()
  } catch (error) {
    return (error as { code?: string }).code
  }
  return undefined
}

const fdatasync = (fs: SimulatedFs, fd: number) =>
  new Promise<Error | null>((resolve) => fs.fdatasync(fd, resolve))

test("simulated fs: reads see writes at once; unsynced data and names are gone after a crash", () => {
  const fs = fresh()
  create(fs, "a", "hello", { file: false, dir: false })
  assert.equal(text(fs.contentOf(`${DIR}/a`)), "hello")
  assert.equal(text(readWholeFile(fs, `${DIR}/a`)), "hello")
  assert.deepEqual(fs.readdirSync(DIR), ["a"])
  const after = fs.crash()
  assert.equal(after.contentOf(`${DIR}/a`), undefined)
  assert.deepEqual(after.readdirSync(DIR), [])
  assert.equal(code(() => after.openSync(`${DIR}/a`, "r")), "ENOENT")
})

test("simulated fs: fsynced content survives only under a durable name", () => {
  const fs = fresh()
  create(fs, "synced-dir-only", "y", { file: false, dir: true })
  create(fs, "synced-both", "z", { file: true, dir: true })
  // Last: a directory fsync makes every earlier name in the directory durable.
  create(fs, "synced-file-only", "x", { file: true, dir: false })
  const after = fs.crash()
  assert.equal(after.contentOf(`${DIR}/synced-file-only`), undefined, "a name needs a directory fsync")
  assert.equal(text(after.contentOf(`${DIR}/synced-dir-only`)), "", "the name survives, the content does not")
  assert.equal(text(after.contentOf(`${DIR}/synced-both`)), "z")
  assert.equal(after.openCount, 0)
  assert.equal(after.pendingCount, 0)
})

test("simulated fs: writes after the last fsync are lost; an fsync covers every earlier write", () => {
  const fs = fresh()
  create(fs, "log", "", { file: true, dir: true })
  const fd = fs.openSync(`${DIR}/log`, "r+")
  writeAll(fs, fd, bytes("one,"), 0)
  writeAll(fs, fd, bytes("two,"), 4)
  fs.fsyncSync(fd)
  writeAll(fs, fd, bytes("three"), 8)
  assert.equal(fs.fstatSync(fd).size, 13)
  assert.equal(text(fs.durableContentOf(`${DIR}/log`)), "one,two,")
  assert.equal(text(fs.crash().contentOf(`${DIR}/log`)), "one,two,")
  fs.ftruncateSync(fd, 4)
  assert.equal(text(fs.contentOf(`${DIR}/log`)), "one,")
  assert.equal(text(fs.crash().contentOf(`${DIR}/log`)), "one,two,", "an unsynced truncation is lost too")
  fs.fsyncSync(fd)
  assert.equal(text(fs.crash().contentOf(`${DIR}/log`)), "one,")
})

test("simulated fs: fdatasync flushes asynchronously what was pending when called", async () => {
  const fs = fresh()
  create(fs, "log", "", { file: true, dir: true })
  const fd = fs.openSync(`${DIR}/log`, "r+")
  writeAll(fs, fd, bytes("abc"), 0)
  const done = fdatasync(fs, fd)
  writeAll(fs, fd, bytes("def"), 3)
  assert.equal(text(fs.durableContentOf(`${DIR}/log`)), "", "not before the callback")
  assert.equal(fs.syncsInFlight, 1)
  await fs.idle()
  assert.equal(fs.syncsInFlight, 0)
  assert.equal(await done, null)
  assert.equal(text(fs.durableContentOf(`${DIR}/log`)), "abc", "the later write waits for the next flush")
  assert.equal(await fdatasync(fs, fd), null)
  assert.equal(text(fs.crash().contentOf(`${DIR}/log`)), "abcdef")
  fs.closeSync(fd)
  assert.equal((await fdatasync(fs, fd))?.message.startsWith("EBADF"), true)
})

test("simulated fs: renames and unlinks need a directory fsync; replaceFileDurably is atomic and durable", () => {
  const fs = fresh()
  create(fs, "old", "v1", { file: true, dir: true })
  create(fs, "tmp", "v2", { file: true, dir: false })
  fs.renameSync(`${DIR}/tmp`, `${DIR}/old`)
  assert.equal(text(fs.contentOf(`${DIR}/old`)), "v2")
  assert.equal(text(fs.crash().contentOf(`${DIR}/old`)), "v1", "an unsynced rename is lost")
  fsyncDir(fs)
  assert.equal(text(fs.crash().contentOf(`${DIR}/old`)), "v2")
  assert.deepEqual(fs.crash().files(), [`${DIR}/old`])

  fs.unlinkSync(`${DIR}/old`)
  assert.equal(fs.contentOf(`${DIR}/old`), undefined)
  assert.equal(text(fs.crash().contentOf(`${DIR}/old`)), "v2", "an unsynced unlink is lost")
  fsyncDir(fs)
  assert.equal(fs.crash().contentOf(`${DIR}/old`), undefined)

  replaceFileDurably(fs, DIR, "checkpoint", bytes("42"))
  replaceFileDurably(fs, DIR, "checkpoint", bytes("43"))
  const after = fs.crash()
  assert.equal(text(after.contentOf(`${DIR}/checkpoint`)), "43")
  assert.deepEqual(after.readdirSync(DIR), ["checkpoint"])
})

test("simulated fs: an unlinked file stays usable through an open descriptor", () => {
  const fs = fresh()
  create(fs, "f", "data", { file: true, dir: true })
  const fd = fs.openSync(`${DIR}/f`, "r+")
  fs.unlinkSync(`${DIR}/f`)
  const buffer = new Uint8Array(4)
  assert.equal(fs.readSync(fd, buffer, 0, 4, 0), 4)
  assert.equal(text(buffer), "data")
  fs.writeSync(fd, bytes("!"), 0, 1, 4)
  assert.equal(fs.fstatSync(fd).size, 5)
  fs.closeSync(fd)
  assert.equal(code(() => fs.openSync(`${DIR}/f`, "r")), "ENOENT")
})

test("simulated fs: errors carry node:fs codes", () => {
  const fs = fresh()
  create(fs, "f", "data", { file: true, dir: true })
  assert.equal(code(() => fs.openSync(`${DIR}/missing`, "r")), "ENOENT")
  assert.equal(code(() => fs.openSync(`${DIR}/missing`, "r+")), "ENOENT")
  assert.equal(code(() => fs.openSync("/nowhere/f", "w")), "ENOENT")
  assert.equal(code(() => fs.openSync(`${DIR}/f`, "wx")), "EEXIST")
  assert.equal(code(() => fs.openSync(DIR, "r+")), "EISDIR")
  assert.equal(code(() => fs.openSync(`${DIR}/f/x`, "w")), "ENOTDIR")
  assert.equal(code(() => fs.readdirSync(`${DIR}/nope`)), "ENOENT")
  assert.equal(code(() => fs.unlinkSync(`${DIR}/missing`)), "ENOENT")
  assert.equal(code(() => fs.unlinkSync(DIR)), "EISDIR")
  assert.equal(code(() => fs.renameSync(`${DIR}/missing`, `${DIR}/g`)), "ENOENT")
  assert.equal(code(() => fs.mkdirSync(`${DIR}/f`, { recursive: true })), "EEXIST")
  const readOnly = fs.openSync(`${DIR}/f`, "r")
  assert.equal(code(() => fs.writeSync(readOnly, bytes("x"), 0, 1, 0)), "EBADF")
  assert.equal(code(() => fs.ftruncateSync(readOnly, 0)), "EINVAL")
  const dir = fs.openSync(DIR, "r")
  assert.equal(code(() => fs.readSync(dir, new Uint8Array(1), 0, 1, 0)), "EISDIR")
  fs.closeSync(dir)
  fs.closeSync(readOnly)
  assert.equal(code(() => fs.closeSync(readOnly)), "EBADF")
  assert.equal(code(() => fs.fstatSync(readOnly)), "EBADF")
  assert.equal(code(() => fs.fsyncSync(999)), "EBADF")
  const error = (() => {
    try {
      fs.openSync(`${DIR}/missing`, "r")
    } catch (e) {
      return e
    }
  })()
  assert.ok(error instanceof Error && error instanceof SimulatedFsError)
  assert.equal(error.syscall, "open")
  assert.match(error.message, /^ENOENT: no such file or directory, open '\/data\/missing'$/)
  // mkdir is recursive and idempotent; "w" truncates an existing file.
  assert.equal(fs.mkdirSync(`${DIR}/a/b`, { recursive: true }), `${DIR}/a`)
  assert.equal(fs.mkdirSync(`${DIR}/a/b`, { recursive: true }), undefined)
  assert.deepEqual(fs.readdirSync(DIR), ["a", "f"])
  fs.closeSync(fs.openSync(`${DIR}/f`, "w"))
  assert.equal(text(fs.contentOf(`${DIR}/f`)), "")
})

test("simulated fs: a crash keeps a prefix of the pending operations, the last write possibly torn", () => {
  const seen = new Set<string>()
  for (let seed = 1; seed <= 200; seed++) {
    const fs = fresh()
    create(fs, "log", "base|", { file: true, dir: true })
    const fd = fs.openSync(`${DIR}/log`, "r+")
    let size = 5
    for (const chunk of ["first|", "second|", "third|"]) {
      writeAll(fs, fd, bytes(chunk), size)
      size += chunk.length
    }
    create(fs, "later", "L", { file: true, dir: false })
    const after = text(fs.crash(prng(seed)).contentOf(`${DIR}/log`))!
    assert.ok("base|first|second|third|".startsWith(after), `seed ${seed}: ${after} is a prefix`)
    assert.ok(after.startsWith("base|"), `seed ${seed}: durable content is kept`)
    seen.add(after)
  }
  assert.ok(seen.has("base|"), "sometimes nothing pending survives")
  assert.ok(seen.has("base|first|second|third|"), "sometimes everything does")
  assert.ok([...seen].some((s) => !s.endsWith("|")), "sometimes a write is torn")
  // Operations on different files keep their order: the name of a later file never survives
  // without the writes issued before it.
  for (let seed = 1; seed <= 200; seed++) {
    const fs = fresh()
    create(fs, "log", "", { file: true, dir: true })
    const fd = fs.openSync(`${DIR}/log`, "r+")
    writeAll(fs, fd, bytes("abc"), 0)
    create(fs, "marker", "", { file: true, dir: false })
    const after = fs.crash(prng(seed), { tear: 0 })
    if (after.contentOf(`${DIR}/marker`) !== undefined) assert.equal(text(after.contentOf(`${DIR}/log`)), "abc")
  }
})

test("simulated fs: the same seed injects the same faults; switched off, none fire", () => {
  const script = (fs: SimulatedFs) => {
    const outcomes: Array<string> = []
    for (let i = 0; i < 60; i++) {
      try {
        const fd = fs.openSync(`${DIR}/f${i % 5}`, i % 2 === 0 ? "w" : "r+")
        writeAll(fs, fd, bytes(`record ${i}`), 0)
        fs.fsyncSync(fd)
        fs.closeSync(fd)
        fs.renameSync(`${DIR}/f${i % 5}`, `${DIR}/g${i % 3}`)
        fs.unlinkSync(`${DIR}/g${(i + 1) % 3}`)
        outcomes.push("ok")
      } catch (error) {
        outcomes.push((error as { code?: string }).code ?? "?")
      }
    }
    return outcomes
  }
  const rates = { fail: 0.1, lose: 0.1 }
  const config = (seed: number): FaultConfig => ({
    random: prng(seed),
    rates: { open: { fail: 0.05 }, write: rates, fsync: rates, rename: rates, unlink: rates }
  })
  const first = fresh(config(7))
  const second = fresh(config(7))
  const other = fresh(config(8))
  const outcomes = script(first)
  assert.deepEqual(script(second), outcomes)
  assert.deepEqual(second.injected, first.injected)
  assert.ok(first.injected.length > 5, `faults fired: ${first.injected.length}`)
  for (const op of ["open", "write", "fsync", "rename", "unlink"]) {
    assert.ok(first.injected.some((f) => f.op === op), `a fault in ${op}`)
  }
  assert.ok(outcomes.includes("EIO"))
  assert.notDeepEqual(script(other), outcomes)
  const quiet = fresh(config(7))
  quiet.faultsEnabled = false
  assert.ok(script(quiet).every((o) => o === "ok" || o === "ENOENT"))
  assert.equal(quiet.injected.length, 0)
  const crashed = first.crash()
  assert.equal(crashed.faultsEnabled, false, "a crashed file system starts with faults off")
  assert.equal(crashed.faults, first.faults)
})

test("simulated fs: a failed operation has no effect", () => {
  const fs = fresh({ random: () => 0, rates: {} })
  create(fs, "f", "old", { file: true, dir: true })
  const fd = fs.openSync(`${DIR}/f`, "r+")
  fs.faults = { random: () => 0, rates: { write: { fail: 1 }, truncate: { fail: 1 }, rename: { fail: 1 }, unlink: { fail: 1 } } }
  assert.equal(code(() => fs.writeSync(fd, bytes("new"), 0, 3, 0)), "EIO")
  assert.equal(code(() => fs.ftruncateSync(fd, 0)), "EIO")
  assert.equal(code(() => fs.renameSync(`${DIR}/f`, `${DIR}/g`)), "EIO")
  assert.equal(code(() => fs.unlinkSync(`${DIR}/f`)), "EIO")
  assert.equal(text(fs.contentOf(`${DIR}/f`)), "old")
  assert.deepEqual(fs.files(), [`${DIR}/f`])
  assert.equal(fs.pendingCount, 0)
  assert.deepEqual(fs.injected.map((f) => `${f.op}:${f.kind}`), ["write:fail", "truncate:fail", "rename:fail", "unlink:fail"])
})

test("simulated fs: a lost write persists part of its bytes, then throws", () => {
  const fs = fresh({ random: prng(3), rates: {} })
  create(fs, "f", "", { file: true, dir: true })
  const fd = fs.openSync(`${DIR}/f`, "r+")
  fs.faults = { random: prng(3), rates: { write: { lose: 1 } } }
  assert.equal(code(() => fs.writeSync(fd, bytes("0123456789"), 0, 10, 0)), "EIO")
  const partial = text(fs.contentOf(`${DIR}/f`))!
  assert.ok("0123456789".startsWith(partial) && partial.length < 10, `partial: ${partial}`)
  fs.faultsEnabled = false
  fs.fsyncSync(fd)
  assert.equal(text(fs.crash().contentOf(`${DIR}/f`)), partial)
})

test("simulated fs: a lost fsync drops the unsynced data for good (fsyncgate)", async () => {
  for (const call of ["fsync", "fdatasyncSync", "fdatasync"] as const) {
    const fs = fresh()
    create(fs, "log", "A", { file: true, dir: true })
    const fd = fs.openSync(`${DIR}/log`, "r+")
    writeAll(fs, fd, bytes("B"), 1)
    fs.faults = { random: () => 0, rates: { [call === "fsync" ? "fsync" : "fdatasync"]: { lose: 1 } } }
    if (call === "fsync") assert.equal(code(() => fs.fsyncSync(fd)), "EIO")
    else if (call === "fdatasyncSync") assert.equal(code(() => fs.fdatasyncSync(fd)), "EIO")
    else assert.equal((await fdatasync(fs, fd) as { code?: string } | null)?.code, "EIO")
    assert.equal(text(fs.contentOf(`${DIR}/log`)), "AB", `${call}: reads still see the data`)
    fs.faultsEnabled = false
    writeAll(fs, fd, bytes("C"), 2)
    fs.fsyncSync(fd)
    assert.equal(text(fs.contentOf(`${DIR}/log`)), "ABC")
    const after = fs.crash()
    assert.equal(text(after.contentOf(`${DIR}/log`)), "A\0C", `${call}: a later fsync does not bring the lost write back`)
  }
})

test("simulated fs: a lost rename, unlink or truncate takes effect in memory only, then throws", () => {
  const fs = fresh()
  create(fs, "a", "aaaa", { file: true, dir: true })
  create(fs, "b", "bbbb", { file: true, dir: true })
  fs.faults = { random: () => 0, rates: { rename: { lose: 1 }, unlink: { lose: 1 }, truncate: { lose: 1 } } }
  const fd = fs.openSync(`${DIR}/b`, "r+")
  assert.equal(code(() => fs.ftruncateSync(fd, 1)), "EIO")
  assert.equal(code(() => fs.renameSync(`${DIR}/a`, `${DIR}/c`)), "EIO")
  assert.equal(code(() => fs.unlinkSync(`${DIR}/b`)), "EIO")
  assert.deepEqual(fs.files(), [`${DIR}/c`])
  const lost = fs.crash()
  assert.deepEqual(lost.files(), [`${DIR}/a`, `${DIR}/b`])
  assert.equal(text(lost.contentOf(`${DIR}/b`)), "bbbb")
  fs.faultsEnabled = false
  fs.fsyncSync(fd)
  fsyncDir(fs)
  const kept = fs.crash()
  assert.deepEqual(kept.files(), [`${DIR}/c`])
  assert.equal(text(kept.contentOf(`${DIR}/c`)), "aaaa")
})

test("simulated fs: short reads and writes transfer fewer bytes without an error", () => {
  const fs = fresh({ random: prng(11), rates: { read: { short: 1 }, write: { short: 1 } } })
  const fd = fs.openSync(`${DIR}/f`, "w+")
  const n = fs.writeSync(fd, bytes("0123456789"), 0, 10, 0)
  assert.ok(n >= 1 && n < 10, `short write: ${n}`)
  writeAll(fs, fd, bytes("0123456789").subarray(n), n)
  fs.faultsEnabled = false
  assert.equal(text(fs.contentOf(`${DIR}/f`)), "0123456789")
  fs.faultsEnabled = true
  const buffer = new Uint8Array(10)
  const read = fs.readSync(fd, buffer, 0, 10, 0)
  assert.ok(read >= 1 && read < 10, `short read: ${read}`)
  assert.ok(fs.injected.length >= 2 && fs.injected.every((f) => f.kind === "short"))
})
