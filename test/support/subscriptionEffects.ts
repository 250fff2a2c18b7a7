/**
 * The side-effect file of the Subscription crash test, shared by the child that writes it
 * (`subscriptionChild.ts`) and the parent that checks it: each child first appends a line
 * `start <pid>`, then its handler appends `apply <seq> <seq> …` (the seqs of one batch) before it
 * returns. A section is what one child wrote: its start line and the batches after it.
 */

/** The line a child writes before it opens anything. */
export const formatStart = (pid: number): string => `start ${pid}\n`

/** The line a handler writes for one batch. */
export const formatApply = (seqs: ReadonlyArray<number>): string => `apply ${seqs.join(" ")}\n`

/** What one child applied: its pid and the seqs of its batches, in the order it applied them. */
export interface Section {
  readonly pid: number
  readonly batches: ReadonlyArray<ReadonlyArray<number>>
}

/** The seqs of a section, in the order they were applied. */
export const sectionSeqs = (section: Section): Array<number> => section.batches.flat()

/**
 * The sections of a side-effect file, in the order the children ran. Every line must be complete
 * and well-formed (a write of one short line is not torn by SIGKILL): anything else throws,
 * naming the line.
 */
export const parseSideEffects = (text: string, file: string): Array<Section> => {
  const sections: Array<{ pid: number; batches: Array<Array<number>> }> = []
  if (text.length > 0 && !text.endsWith("\n")) throw new Error(`${file}: the last line is incomplete: ${JSON.stringify(text.slice(-80))}`)
  const lines = text.split("\n").slice(0, -1)
  lines.forEach((line, i) => {
    const start = /^start (\d+)$/.exec(line)
    if (start !== null) {
      sections.push({ pid: Number(start[1]), batches: [] })
      return
    }
    const apply = /^apply (\d+(?: \d+)*)$/.exec(line)
    const section = sections[sections.length - 1]
    if (apply === null || section === undefined) throw new Error(`${file}: line ${i + 1} is not a start or apply line after a start: ${JSON.stringify(line)}`)
    section.batches.push(apply[1]!.split(" ").map(Number))
  })
  return sections
}

/** The name of the child's subscription: its cursor and lease in the CursorStore. */
export const SUBSCRIPTION_NAME = "crash"
