/**
 * The file Journal's table of stream names: every stream that ever had a record gets a number (0, 1,
 * 2 … in the order they were first seen), found from its namespace and id by an open-addressing hash
 * table. Namespaces are interned (a journal has few); ids are kept once, as UTF-8 in pages of bytes.
 * A stream costs about 18–26 bytes plus its id's length, where a `Map` keyed by strings costs several
 * times that — what lets a journal of millions of small streams open within a small heap.
 * @internal
 */

const encoder = new TextEncoder()
// ignoreBOM: an id may start with U+FEFF like any other character; it must come back with it.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/**
 * Streams per page of the per-stream columns: columns grow by a page, never by copying, so that they
 * cost what they hold plus less than a page. @internal
 */
export const STREAM_PAGE_BITS = 12
const STREAM_PAGE = 1 << STREAM_PAGE_BITS
const STREAM_MASK = STREAM_PAGE - 1

/** Bytes of one page of the id pool; an id never spans two pages (ids are at most 768 bytes). */
const PAGE_BITS = 20
const PAGE_BYTES = 1 << PAGE_BITS

/** The stream table. @internal */
export class StreamKeys {
  private readonly namespaceNumbers = new Map<string, number>()
  private readonly namespaceNames: Array<string> = []
  /** Per stream, in pages: its namespace's number, then where its id starts (see `pages`). */
  private readonly columns: Array<Uint32Array> = []
  /** Per stream, in pages: its id's length in bytes. */
  private readonly lengths: Array<Uint16Array> = []
  /** The ids, in pages (the first grows up to a page): the pool costs its ids plus at most one page. */
  private readonly pages: Array<Uint8Array> = [new Uint8Array(16 * 1024)]
  /** Where the next id goes. */
  private used = 0
  /**
   * Pairs (hash of the key, stream number + 1; 0: empty), side by side so that a probe reads one cache
   * line; a power of two of them, at most half used.
   */
  private slots = new Uint32Array(2 * 2048)
  /** The id being looked up, as UTF-8 (room for 3 bytes per UTF-16 code unit). */
  private scratch = new Uint8Array(3 * 256)
  /** How many streams there are. */
  size = 0

  /** The stream's number, or -1 if it has none. */
  find(namespace: string, id: string): number {
    const ns = this.namespaceNumbers.get(namespace)
    if (ns === undefined) return -1
    const length = this.encode(id)
    const slot = this.slotOf(ns, length, this.hash(ns, length))
    return this.slots[slot + 1]! - 1
  }

  /** The stream's number, given to it now if it had none. */
  findOrAdd(namespace: string, id: string): number {
    let ns = this.namespaceNumbers.get(namespace)
    if (ns === undefined) {
      ns = this.namespaceNames.length
      this.namespaceNames.push(namespace)
      this.namespaceNumbers.set(namespace, ns)
    }
    const length = this.encode(id)
    const hash = this.hash(ns, length)
    const slot = this.slotOf(ns, length, hash)
    if (this.slots[slot + 1] !== 0) return this.slots[slot + 1]! - 1
    const s = this.size++
    if ((s & STREAM_MASK) === 0) {
      this.columns.push(new Uint32Array(2 * STREAM_PAGE))
      this.lengths.push(new Uint16Array(STREAM_PAGE))
    }
    const start = this.reserve(length)
    const page = this.pages[start >>> PAGE_BITS]!
    const offset = start & (PAGE_BYTES - 1)
    // A loop, not `set(subarray)`: ids are short, and the view would cost more than the copy.
    const scratch = this.scratch
    for (let i = 0; i < length; i++) page[offset + i] = scratch[i]!
    const columns = this.columns[s >>> STREAM_PAGE_BITS]!
    columns[s & STREAM_MASK] = ns
    columns[STREAM_PAGE + (s & STREAM_MASK)] = start
    this.lengths[s >>> STREAM_PAGE_BITS]![s & STREAM_MASK] = length
    this.slots[slot] = hash
    this.slots[slot + 1] = s + 1
    if (this.size * 4 > this.slots.length) this.rehash()
    return s
  }

  /** The namespace of stream `s`. */
  namespace(s: number): string {
    return this.namespaceNames[this.columns[s >>> STREAM_PAGE_BITS]![s & STREAM_MASK]!]!
  }

  /** The id of stream `s` (a new string). */
  id(s: number): string {
    const at = this.columns[s >>> STREAM_PAGE_BITS]![STREAM_PAGE + (s & STREAM_MASK)]!
    const start = at & (PAGE_BYTES - 1)
    const bytes = this.pages[at >>> PAGE_BITS]!.subarray(start, start + this.lengths[s >>> STREAM_PAGE_BITS]![s & STREAM_MASK]!)
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i]! >= 0x80) return decoder.decode(bytes)
    }
    return String.fromCharCode.apply(null, bytes as unknown as Array<number>)
  }

  /** Writes `id` as UTF-8 into `scratch`; returns its length. */
  private encode(id: string): number {
    if (3 * id.length > this.scratch.length) this.scratch = new Uint8Array(3 * id.length)
    const scratch = this.scratch
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i)
      if (c >= 0x80) return encoder.encodeInto(id, scratch).written
      scratch[i] = c
    }
    return id.length
  }

  /** FNV-1a over the namespace's number and the id's bytes in `scratch`. */
  private hash(ns: number, length: number): number {
    let hash = Math.imul(0x811c9dc5 ^ ns, 0x01000193)
    const scratch = this.scratch
    for (let i = 0; i < length; i++) hash = Math.imul(hash ^ scratch[i]!, 0x01000193)
    return (hash ^ (hash >>> 16)) >>> 0
  }

  /** The slot (its index in `slots`) holding the stream whose id is in `scratch`, or the empty one where it would go. */
  private slotOf(ns: number, length: number, hash: number): number {
    const slots = this.slots
    const mask = slots.length / 2 - 1
    for (let i = hash & mask;; i = (i + 1) & mask) {
      const s = slots[2 * i + 1]! - 1
      if (s < 0 || (slots[2 * i] === hash && this.idIs(s, ns, length))) return 2 * i
    }
  }

  /** Whether stream `s` is in namespace `ns` and its id is the `length` bytes in `scratch`. */
  private idIs(s: number, ns: number, length: number): boolean {
    const columns = this.columns[s >>> STREAM_PAGE_BITS]!
    if (columns[s & STREAM_MASK] !== ns || this.lengths[s >>> STREAM_PAGE_BITS]![s & STREAM_MASK] !== length) return false
    const at = columns[STREAM_PAGE + (s & STREAM_MASK)]!
    const page = this.pages[at >>> PAGE_BITS]!
    const start = at & (PAGE_BYTES - 1)
    const scratch = this.scratch
    for (let i = 0; i < length; i++) {
      if (page[start + i] !== scratch[i]) return false
    }
    return true
  }

  /** Room for `length` bytes of id in the pages; returns where. */
  private reserve(length: number): number {
    let start = this.used
    if ((start & (PAGE_BYTES - 1)) + length > PAGE_BYTES) start = ((start >>> PAGE_BITS) + 1) * PAGE_BYTES
    const number = start >>> PAGE_BITS
    const end = (start & (PAGE_BYTES - 1)) + length
    if (number === this.pages.length) this.pages.push(new Uint8Array(PAGE_BYTES))
    const page = this.pages[number]!
    if (page.length < end) {
      const next = new Uint8Array(Math.min(PAGE_BYTES, Math.max(end, page.length * 2)))
      next.set(page)
      this.pages[number] = next
    }
    this.used = start + length
    return start
  }

  /** Doubles the slots and puts every stream back. */
  private rehash(): void {
    const old = this.slots
    const slots = new Uint32Array(old.length * 2)
    const mask = slots.length / 2 - 1
    for (let j = 0; j < old.length; j += 2) {
      if (old[j + 1] === 0) continue
      let i = old[j]! & mask
      while (slots[2 * i + 1] !== 0) i = (i + 1) & mask
      slots[2 * i] = old[j]!
      slots[2 * i + 1] = old[j + 1]!
    }
    this.slots = slots
  }
}
