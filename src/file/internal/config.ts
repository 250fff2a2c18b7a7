/**
 * The directory names of the file layers' `config`: one data directory, `ANNALS_DATA_DIR`
 * (default `data`), with a subdirectory per layer, each replaceable by a variable of its own.
 * @internal
 */
import * as Config from "effect/Config"
import * as NodePath from "node:path"

/** `override` when set, else `subdirectory` below `ANNALS_DATA_DIR` (default `data`). @internal */
export const dataDirectory = (override: string, subdirectory: string): Config.Config<string> =>
  Config.String(override).pipe(
    Config.orElse(() => Config.String("ANNALS_DATA_DIR").pipe(Config.withDefault("data"), Config.map((root) => NodePath.join(root, subdirectory))))
  )
