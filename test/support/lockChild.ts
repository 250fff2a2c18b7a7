/**
 * The child process of the directory-lock race test: prints `ready`, waits for a line `go <ms>`
 * on stdin, and at that wall-clock time (spinning for the last few milliseconds, so that children
 * woken at slightly different times start together) calls `lockDirectory` on the directory given
 * in argv. If it gets the lock it appends `enter <pid> <ms>` to the log file (opened for
 * appending, shared by all children), holds the lock for `holdMs`, appends `exit <pid> <ms>`,
 * releases and prints `locked`; otherwise it prints `refused <message>`.
 *
 * Usage: lockChild <directory> <log file> <holdMs>
 * Exits with code 0 after `locked` or `refused`, 3 on any other failure.
 */
import * as fs from "node:fs"
import process from "node:process"
import { lockDirectory } from "../../src/file/internal/directoryLock.ts"
import { nodeFileIo } from "../../src/file/internal/fileIo.ts"

const [directory, log, holdText] = process.argv.slice(2)
if (directory === undefined || log === undefined || holdText === undefined) {
  process.stderr.write("usage: lockChild <directory> <log file> <holdMs>\n")
  process.exit(2)
}

const note = (what: string) => fs.appendFileSync(log, `${what} ${process.pid} ${Date.now()}\n`)

const attempt = () => {
  let release: () => void
  try {
    release = lockDirectory(nodeFileIo, directory)
  } catch (error) {
    process.stdout.write(`refused ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(0)
  }
  note("enter")
  setTimeout(() => {
    note("exit")
    release()
    process.stdout.write("locked\n")
    process.exit(0)
  }, Number(holdText))
}

const SPIN_MS = 10

process.stdin.once("data", (line) => {
  const start = Number(String(line).replace(/^go /, ""))
  setTimeout(() => {
    while (Date.now() < start) {
      // Spin: a timer would wake each child at a slightly different moment.
    }
    try {
      attempt()
    } catch (error) {
      process.stderr.write(`lockChild failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
      process.exit(3)
    }
  }, start - SPIN_MS - Date.now())
})
process.stdout.write("ready\n")
