/**
 * A TCP proxy on loopback in front of a server (Redis, in the fault tests), to make faults on
 * purpose without touching the server: `cut()` closes every open connection (a command in flight
 * loses its reply), `stop()` also refuses new ones until `start()` (a server gone and back), and
 * `holdReplies()` keeps back what the server sends until `releaseReplies()` (a slow reply; cut
 * meanwhile, a reply lost on the way while the command did run).
 */
import type { Buffer } from "node:buffer"
import * as net from "node:net"

/** A running proxy. */
export interface TcpProxy {
  /** The proxy's address, e.g. `redis://127.0.0.1:40123`. */
  readonly url: string
  /** Connections opened through it so far. */
  readonly connections: () => number
  /** Resets every open connection. */
  readonly cut: () => void
  /** Cuts every connection and refuses new ones until `start`. */
  readonly stop: () => void
  /** Accepts connections again. */
  readonly start: () => void
  /** Keeps back everything the server sends from now on, until `releaseReplies` (a cut drops what was kept). */
  readonly holdReplies: () => void
  /** Forwards what was kept back, and the server's bytes from then on. */
  readonly releaseReplies: () => void
  /** Closes the proxy and every connection. */
  readonly close: () => Promise<void>
}

/** Starts a proxy to `target` (`host:port`) on a free loopback port. */
export const startTcpProxy = async (target: { readonly host: string; readonly port: number }, scheme = "redis"): Promise<TcpProxy> => {
  const sockets = new Set<net.Socket>()
  let accepting = true
  let holding = false
  let opened = 0
  const held = new Map<net.Socket, Array<Buffer>>()
  const server = net.createServer((client) => {
    if (!accepting) return void client.destroy()
    opened++
    const upstream = net.connect(target.port, target.host)
    sockets.add(client)
    sockets.add(upstream)
    client.on("data", (chunk) => upstream.write(chunk))
    upstream.on("data", (chunk: Buffer) => {
      if (!holding) return void client.write(chunk)
      const kept = held.get(client) ?? []
      kept.push(chunk)
      held.set(client, kept)
    })
    const end = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
      held.delete(client)
    }
    client.on("close", end)
    upstream.on("close", end)
    client.on("error", end)
    upstream.on("error", end)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as net.AddressInfo).port
  const cut = () => {
    for (const socket of sockets) socket.destroy()
    sockets.clear()
    held.clear()
  }
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    connections: () => opened,
    cut,
    stop: () => {
      accepting = false
      cut()
    },
    start: () => {
      accepting = true
    },
    holdReplies: () => {
      holding = true
    },
    releaseReplies: () => {
      holding = false
      for (const [client, chunks] of held) for (const chunk of chunks) client.write(chunk)
      held.clear()
    },
    close: () => {
      cut()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
