/**
 * SQL identifiers from options (schema, table prefix): checked against a conservative alphabet, then
 * quoted. Values are never spliced into SQL: they are bound parameters.
 * @internal
 */

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/
const PREFIX = /^[A-Za-z_][A-Za-z0-9_]*$/

/** PostgreSQL truncates identifiers past 63 bytes; table names add their own suffix to the prefix. */
const MAX_SCHEMA = 63
const MAX_PREFIX = 40

/** What is wrong with `value` as the identifier `what`, or `undefined`. @internal */
export const identifierProblem = (what: string, value: unknown, options: { readonly allowEmpty?: boolean } = {}): string | undefined => {
  if (typeof value !== "string") return `${what} must be a string, got ${typeof value}`
  if (value === "" && options.allowEmpty === true) return undefined
  const max = options.allowEmpty === true ? MAX_PREFIX : MAX_SCHEMA
  if (!(options.allowEmpty === true ? PREFIX : IDENTIFIER).test(value) || value.length > max) {
    return `${what} must be letters, digits and underscores, not starting with a digit, at most ${max} characters; got ${JSON.stringify(value)}`
  }
  return undefined
}

/** `value` as a quoted SQL identifier (it passed `identifierProblem`, so it holds no quote). @internal */
export const quoteIdentifier = (value: string): string => `"${value}"`
