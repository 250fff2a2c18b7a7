/**
 * The projection artifacts the artifact crash test writes: each round's artifact is a pure function
 * of the round, so the parent can check every complete artifact byte for byte against what the child
 * meant to write. Several data files a round, one of them 1–4 MB (so that kills land mid-write).
 */
import type { ArtifactInput } from "../../src/internal/projectionArtifact.ts"
import { prng } from "./ledger.ts"

/** The projection the crash test exports: a name with a `/`, `@`, spaces and non-ASCII letters. */
export const CRASH_PROJECTION = "crash/orders @ Zürich 🎉"
export const CRASH_VERSION = 3

/** `size` bytes of seeded noise. */
const noise = (seed: number, size: number): Uint8Array => {
  const random = prng(seed)
  const words = new Uint32Array(Math.ceil(size / 4))
  for (let i = 0; i < words.length; i++) words[i] = Math.floor(random() * 0x1_0000_0000)
  return new Uint8Array(words.buffer, 0, size)
}

/** The artifact of `round`, written by `writer`. */
export const crashArtifact = (round: number, writer: string): ArtifactInput => {
  const random = prng(round * 7919 + 17)
  const files = [
    { name: "state.bin", bytes: noise(round * 4 + 1, 1_000_000 + Math.floor(random() * 3_000_000)) },
    { name: "index.bin", bytes: noise(round * 4 + 2, Math.floor(random() * 65_536)) },
    { name: "keys.bin", bytes: noise(round * 4 + 3, 200_000 + Math.floor(random() * 800_000)) },
    { name: "meta.json", bytes: new TextEncoder().encode(JSON.stringify({ round })) }
  ]
  return {
    projection: CRASH_PROJECTION,
    version: CRASH_VERSION,
    round,
    cursor: round * 100,
    timestamp: 1_700_000_000_000 + round,
    schemaVersion: 2,
    writer,
    createdAt: 1_800_000_000_000 + round,
    files: random() < 0.3 ? [...files, { name: "empty", bytes: new Uint8Array(0) }] : files
  }
}
