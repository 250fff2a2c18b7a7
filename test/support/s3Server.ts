/**
 * A real S3-protocol server on loopback for the tests (DESIGN §13): Ceph's radosgw over a throwaway
 * one-node cluster, run by `test/support/rgw/start-rgw.sh` as a separate process group, with random
 * keys. Its gateway can be stopped and started again (an outage: the objects are kept) or paused (a
 * server that accepts connections and never answers). Built-in modules only: it runs on Bun, Deno
 * and Node.
 */
import { spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { fileURLToPath } from "node:url"
import { freePort } from "./embeddedPostgres.ts"
import { repositoryRoot } from "./programWorkspace.ts"

/** An S3 server the suites run against: where it is and the keys of its one user. */
export interface S3Target {
  /** Names the server in test names. */
  readonly name: string
  /** `http://127.0.0.1:<port>` (path-style buckets). */
  readonly endpoint: string
  readonly region: string
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
}

/** A server this process started. */
export interface S3Server extends S3Target {
  /** Stops every daemon and removes all its data. */
  readonly stop: () => Promise<void>
  /** Kills the gateway: requests fail at once with a connection error; the objects are kept. */
  readonly stopGateway: () => Promise<void>
  /** Starts a stopped gateway again (same port, same objects); resolves once it accepts connections. */
  readonly startGateway: () => Promise<void>
  /** Freezes the gateway (SIGSTOP): connections are accepted but requests get no answer. */
  readonly pauseGateway: () => Promise<void>
  /** Lets a paused gateway go on (SIGCONT); requests that were waiting are answered. */
  readonly resumeGateway: () => Promise<void>
}

/** The programs the script runs (Debian packages `radosgw`, `ceph-mon`, `ceph-osd`; `bash`). */
const programs = ["bash", "monmaptool", "ceph-mon", "ceph", "ceph-osd", "radosgw", "radosgw-admin"]

/** The programs the server needs that are not on PATH. */
export const missingPrograms = (): ReadonlyArray<string> => {
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean)
  const found = (name: string) =>
    dirs.some((dir) => {
      try {
        fs.accessSync(path.join(dir, name), fs.constants.X_OK)
        return true
      } catch {
        return false
      }
    })
  return programs.filter((name) => !found(name))
}

const START_TIMEOUT_MS = 60_000
const COMMAND_TIMEOUT_MS = 60_000
const STOP_GRACE_MS = 5_000

/** Two different free loopback ports. */
const twoPorts = async (): Promise<[number, number]> => {
  const first = await freePort()
  for (;;) {
    const second = await freePort()
    if (second !== first) return [first, second]
  }
}

/** `promise`, or `onTimeout()` after `ms` milliseconds. */
const within = <A>(promise: Promise<A>, ms: number, onTimeout: () => A | Promise<A>): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([promise, new Promise<A>((resolve) => (timer = setTimeout(() => resolve(onTimeout()), ms)))]).finally(() =>
    clearTimeout(timer)
  )
}

/**
 * Starts a server (about 1.5 s); rejects with the script's stderr if it is not ready within 60 s.
 * Call `stop` when done; if this process dies first, the script sees its stdin close and removes
 * everything itself. With `untilExit`, the server does not keep this process alive and lives until
 * it ends (no `stop` needed).
 */
export const startS3Server = async (options?: { readonly untilExit?: boolean }): Promise<S3Server> => {
  const missing = missingPrograms()
  if (missing.length > 0) {
    throw new Error(`cannot start radosgw: ${missing.join(", ")} not on PATH (Debian: apt-get install radosgw ceph-mon ceph-osd)`)
  }
  const [rgwPort, monPort] = await twoPorts()
  const credentials = {
    accessKeyId: crypto.randomBytes(10).toString("hex").toUpperCase(),
    secretAccessKey: crypto.randomBytes(20).toString("base64url")
  }
  const script = path.join(await repositoryRoot(path.dirname(fileURLToPath(import.meta.url))), "test", "support", "rgw", "start-rgw.sh")
  const child = spawn("bash", [script], {
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
    env: {
      ...process.env,
      RGW_PORT: String(rgwPort),
      MON_PORT: String(monPort),
      S3_ACCESS_KEY: credentials.accessKeyId,
      S3_SECRET_KEY: credentials.secretAccessKey
    }
  })
  const lines: Array<string> = []
  const waiting = new Set<() => void>()
  const wakeAll = () => waiting.forEach((wake) => wake())
  let pending = ""
  let stderr = ""
  let ended = false
  child.stdout!.setEncoding("utf8")
  child.stdout!.on("data", (chunk: string) => {
    const complete = (pending + chunk).split("\n")
    pending = complete.pop()!
    lines.push(...complete)
    wakeAll()
  })
  // A write to a script that is gone fails here; the command then fails on the script's end.
  child.stdin!.on("error", () => undefined)
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk
  })
  const closed = new Promise<void>((resolve) => {
    const end = () => {
      ended = true
      wakeAll()
      resolve()
    }
    child.on("close", end)
    child.on("error", (error) => {
      stderr += `could not run bash: ${error.message}\n`
      end()
    })
  })
  /** The first line from the script matching `expected` (consumed); rejects once the script ended, or after `ms`. */
  const line = (expected: RegExp, ms: number, what: string) =>
    new Promise<string>((resolve, reject) => {
      const finish = (settle: () => void) => {
        waiting.delete(wake)
        clearTimeout(timer)
        settle()
      }
      const timer = setTimeout(
        () => finish(() => reject(new Error(`the S3 server (radosgw) did not ${what} within ${ms} ms; its stderr:\n${stderr}`))),
        ms
      )
      const wake = () => {
        const index = lines.findIndex((text) => expected.test(text))
        if (index >= 0) finish(() => resolve(lines.splice(index, 1)[0]!))
        else if (ended) finish(() => reject(new Error(`the S3 server (radosgw) ended before it could ${what}; its stderr:\n${stderr}`)))
      }
      waiting.add(wake)
      wake()
    })
  /** The script's group (every daemon) gets `signal`, unless it is gone. */
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal)
    } catch {
      // already gone
    }
  }
  let stopping: Promise<void> | undefined
  // Closing stdin asks the script to kill its daemons and remove its directory; SIGTERM makes a
  // script that is still starting do the same; SIGKILL is the last resort.
  const stop = () =>
    stopping ??= (async () => {
      child.stdin!.end()
      await within(closed, STOP_GRACE_MS, () => {
        signalGroup("SIGTERM")
        return within(closed, STOP_GRACE_MS, () => (signalGroup("SIGKILL"), closed))
      })
    })()
  try {
    await line(/^READY port=\d+/, START_TIMEOUT_MS, "become ready")
  } catch (error) {
    await stop()
    throw error
  }
  if (options?.untilExit === true) {
    // Kept for the life of this process: nothing of it holds the process open, and its stdin
    // closes when the process ends, whichever way — the script then removes everything.
    child.unref()
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.()
  }
  let queue: Promise<void> = Promise.resolve()
  /** Sends `command` to the script once earlier ones are done; resolves when it answered. */
  const command = (name: string) => {
    const done = queue.then(async () => {
      if (stopping !== undefined || ended) throw new Error(`the S3 server was stopped: cannot ${name}`)
      child.stdin!.write(`${name}\n`)
      await line(new RegExp(`^OK ${name}$`), COMMAND_TIMEOUT_MS, `answer ${name}`)
    })
    queue = done.catch(() => undefined)
    return done
  }
  return {
    name: "radosgw",
    endpoint: `http://127.0.0.1:${rgwPort}`,
    region: "us-east-1",
    credentials,
    stop,
    stopGateway: () => command("stop-gateway"),
    startGateway: () => command("start-gateway"),
    pauseGateway: () => command("pause-gateway"),
    resumeGateway: () => command("resume-gateway")
  }
}
