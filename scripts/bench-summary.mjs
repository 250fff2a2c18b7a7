#!/usr/bin/env node
// Summarizes benchmark runs: reads the JSON lines of one or more runs (files, or standard input) and
// prints one Markdown table per runtime with, for every figure, the median over the runs, the range,
// and in how many runs its target was met.
//
//   for i in 1 2 3 4 5; do npm run --silent bench -- file >> runs.jsonl; done
//   node scripts/bench-summary.mjs runs.jsonl
import { readFileSync } from "node:fs"

const files = process.argv.slice(2)
const text = files.length === 0 ? readFileSync(0, "utf8") : files.map((file) => readFileSync(file, "utf8")).join("\n")
const figures = new Map()
for (const line of text.split("\n")) {
  if (!line.startsWith("{")) continue
  const figure = JSON.parse(line)
  const key = `${figure.runtime}\u0000${figure.bench}`
  const entry = figures.get(key) ?? { ...figure, values: [], met: [] }
  entry.values.push(figure.value)
  if (figure.met !== null) entry.met.push(figure.met)
  figures.set(key, entry)
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
const format = (value) => (Math.abs(value) >= 100 ? Math.round(value).toLocaleString("en-US") : String(Number(value.toPrecision(4))))

for (const runtime of [...new Set([...figures.values()].map((f) => f.runtime))]) {
  console.log(`\n### ${runtime}\n`)
  console.log("| figure | unit | target | median | range | runs | met |")
  console.log("|---|---|---|---|---|---|---|")
  for (const f of figures.values()) {
    if (f.runtime !== runtime) continue
    const met = f.met.length === 0 ? "—" : `${f.met.filter(Boolean).length} of ${f.met.length}`
    const range = `${format(Math.min(...f.values))} – ${format(Math.max(...f.values))}`
    console.log(`| ${f.bench} | ${f.unit} | ${f.target ?? "—"} | ${format(median(f.values))} | ${range} | ${f.values.length} | ${met} |`)
  }
}
