import { Effect } from "effect"
import { Journal } from "../src/index.ts"
import { register } from "./conformance/harness.ts"
import { journalCases } from "./conformance/Journal.ts"
import { journalFollowCases } from "./conformance/JournalFollow.ts"

const memory = { name: "memory", durable: false, storage: Effect.succeed({ layer: Journal.layerMemory }) }
register("Journal", memory, journalCases)
register("Journal follow", memory, journalFollowCases)
