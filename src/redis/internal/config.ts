/**
 * What the Redis stores' `config` shares: `ANNALS_REDIS_PREFIX`, the key prefix of every store.
 * @internal
 */
import type * as Config from "effect/Config"
import { checkedString } from "../../internal/config.ts"
import { prefixProblem } from "./keys.ts"

/** `ANNALS_REDIS_PREFIX` (checked as the layers check `prefix`). @internal */
export const redisPrefix: Config.Config<string | undefined> = checkedString("ANNALS_REDIS_PREFIX", prefixProblem)
