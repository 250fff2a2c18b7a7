/**
 * What the NATS stores' `config` shares: `ANNALS_NATS_PREFIX`, `ANNALS_NATS_REPLICAS` and
 * `ANNALS_NATS_STORAGE`, the options of every store's streams and buckets.
 * @internal
 */
import * as Config from "effect/Config"
import { checkedString, integerBetween, optional } from "../../internal/config.ts"
import type { NatsStorageOptions } from "./buckets.ts"
import { prefixProblem } from "./names.ts"

/** The prefix and storage options of a NATS store. @internal */
export const natsStoreOptions: Config.Config<NatsStorageOptions & { readonly prefix?: string | undefined }> = Config.all({
  prefix: checkedString("ANNALS_NATS_PREFIX", prefixProblem),
  replicas: integerBetween("ANNALS_NATS_REPLICAS", 1, 5),
  storage: optional(Config.Literals(["file", "memory"], "ANNALS_NATS_STORAGE"))
})
