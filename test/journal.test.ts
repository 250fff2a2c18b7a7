import { Effect } from "effect"
import { Journal } from "../src/index.ts"
import { register } from "./conformance/harness.ts"
import { journalCases } from "./conformance/Journal.ts"

register("Journal", { name: "memory", durable: false, storage: Effect.succeed({ layer: Journal.layerMemory }) }, journalCases)
