/**
 * Commands over ioredis connections (one server's, or a cluster's), as Effect's `Redis` service
 * sends them.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as EffectRedis from "effect/persistence/Redis"
import type { Redis as IORedis } from "ioredis"

/** What sends a command and closes: an ioredis `Redis` or `Cluster`. */
export interface Commander {
  readonly call: (command: string, ...args: ReadonlyArray<string>) => Promise<unknown>
  readonly status: string
  readonly quit: () => Promise<unknown>
  readonly disconnect: () => void
}

/** Sends one command on `client`; a failure is a `RedisError` carrying the client's or server's error. */
export const sender = (client: Commander) => <A = unknown>(command: string, ...args: ReadonlyArray<string>): Effect.Effect<A, EffectRedis.RedisError> =>
  Effect.tryPromise({
    try: () => client.call(command, ...args) as Promise<A>,
    catch: (cause) => new EffectRedis.RedisError({ cause })
  })

/**
 * Makes `client` fail, when its connection closes, the commands it had sent that still wait for
 * their replies: those replies can no longer come, and ioredis, which does not send the commands
 * again (`autoResendUnfulfilledCommands: false`), would leave them — and every auto-pipelined
 * command queued behind them — waiting for `commandTimeout`. Such a command may or may not have
 * run. (Commands sent while the client reconnects wait in its offline queue as usual.)
 */
export const failInFlightOnClose = (client: IORedis): void => {
  client.on("close", () => {
    const inFlight = client.commandQueue.toArray()
    for (const { command } of inFlight) command.reject(new Error("the connection closed before the reply came"))
  })
}

/** Closes `client`: QUIT when it is connected (replies still due arrive first), else at once. */
export const quit = (client: Commander): Effect.Effect<void> =>
  client.status === "ready"
    ? Effect.promise(() => client.quit().then(() => undefined, () => client.disconnect()))
    : Effect.sync(() => client.disconnect())
