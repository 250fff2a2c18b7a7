/**
 * Reads the TypeScript code blocks of a Markdown document as programs to type-check and run (see
 * README.md, "Development"):
 *
 * - every ```ts / ```typescript block is a program of its own, unless the HTML comment right before
 *   it is `<!-- continues -->`: then it is appended to the program of the block before it (a
 *   walkthrough in steps is one program);
 * - `<!-- not run -->` before a block: its program is type-checked but not run;
 * - a line ending in `// → TEXT` states that the program prints the line `TEXT`.
 *
 * Any other HTML comment right before a TypeScript block is an error, so a misspelt marker never
 * silently changes what is tested.
 */

/** One fenced code block: its language, its first code line (1-based) and its lines. */
export interface CodeBlock {
  readonly language: string
  readonly line: number
  readonly lines: ReadonlyArray<string>
  /** The markers of the HTML comment right before the block. */
  readonly markers: ReadonlyArray<string>
}

/** A program assembled from one or more TypeScript blocks. */
export interface Program {
  /** `README.md:LINE`, the first block's first code line. */
  readonly name: string
  readonly line: number
  readonly blocks: ReadonlyArray<CodeBlock>
  readonly run: boolean
  /** The lines the program says it prints, in order. */
  readonly expected: ReadonlyArray<string>
  /**
   * The program's source with the document's line numbers: every line outside its blocks is blank,
   * so an error at line N of this source is at line N of the document.
   */
  readonly source: string
}

const markerNames = ["continues", "not run"]
const fence = /^(\s*)(`{3,}|~{3,})(.*)$/
const comment = /^\s*<!--(.*)-->\s*$/
const stated = /\/\/ → (.+)$/

/** Every fenced code block of `markdown`, with the markers of the comment before it. */
export const codeBlocks = (markdown: string): ReadonlyArray<CodeBlock> => {
  const lines = markdown.split("\n")
  const blocks: Array<CodeBlock> = []
  let previous = ""
  for (let i = 0; i < lines.length; i++) {
    const open = fence.exec(lines[i]!)
    if (open === null) {
      if (lines[i]!.trim() !== "") previous = lines[i]!
      continue
    }
    const [, indent, marks, info] = open as unknown as [string, string, string, string]
    const closing = new RegExp(`^\\s*${marks[0] === "`" ? "`" : "~"}{${marks.length},}\\s*$`)
    const start = i + 1
    let end = start
    while (end < lines.length && !closing.test(lines[end]!)) end++
    if (end === lines.length) throw new Error(`line ${i + 1}: the code block is never closed`)
    const markers = comment.exec(previous)?.[1]!.split(",").map((m) => m.trim()).filter((m) => m !== "") ?? []
    blocks.push({
      language: info.trim().split(/\s+/)[0]!.toLowerCase(),
      line: start + 1,
      lines: lines.slice(start, end).map((line) => line.startsWith(indent) ? line.slice(indent.length) : line.trimStart()),
      markers
    })
    i = end
    previous = lines[end]!
  }
  return blocks
}

const isTypeScript = (block: CodeBlock) => block.language === "ts" || block.language === "typescript"

/** The programs of `markdown`'s TypeScript blocks (see the module doc), named after `file`. */
export const programs = (markdown: string, file: string): ReadonlyArray<Program> => {
  const total = markdown.split("\n").length
  const groups: Array<Array<CodeBlock>> = []
  for (const block of codeBlocks(markdown).filter(isTypeScript)) {
    const unknown = block.markers.filter((m) => !markerNames.includes(m))
    if (unknown.length > 0) {
      throw new Error(`${file}:${block.line}: unknown marker ${JSON.stringify(unknown.join(", "))} before a TypeScript block ` +
        `(known: ${markerNames.map((m) => `<!-- ${m} -->`).join(", ")})`)
    }
    if (block.markers.includes("continues")) {
      const last = groups[groups.length - 1]
      if (last === undefined) throw new Error(`${file}:${block.line}: <!-- continues --> but no TypeScript block before it`)
      last.push(block)
    } else {
      groups.push([block])
    }
  }
  return groups.map((blocks) => {
    const source = Array.from({ length: total }, () => "")
    for (const block of blocks) block.lines.forEach((line, k) => source[block.line - 1 + k] = line)
    return {
      name: `${file}:${blocks[0]!.line}`,
      line: blocks[0]!.line,
      blocks,
      run: !blocks.some((block) => block.markers.includes("not run")),
      expected: blocks.flatMap((block) => block.lines.flatMap((line) => stated.exec(line)?.[1]!.trim() ?? [])),
      source: source.join("\n")
    }
  })
}

/** The first JSON block of `markdown` that has `compilerOptions`: the tsconfig.json it recommends. */
export const documentedTsconfig = (
  markdown: string,
  file: string
): { readonly compilerOptions: Record<string, unknown>; readonly [key: string]: unknown } => {
  for (const block of codeBlocks(markdown)) {
    if (block.language !== "json") continue
    const parsed: unknown = JSON.parse(block.lines.join("\n"))
    if (typeof parsed === "object" && parsed !== null && "compilerOptions" in parsed) {
      return parsed as { readonly compilerOptions: Record<string, unknown> }
    }
  }
  throw new Error(`${file} has no JSON block with "compilerOptions" (the tsconfig a project should use)`)
}
