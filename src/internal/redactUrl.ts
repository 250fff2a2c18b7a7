/**
 * A URL as it may be shown: its password replaced by `***`. Text that is not a URL is returned as
 * it is (a path has no password).
 * @internal
 */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password === "") return url
    parsed.password = "***"
    return parsed.toString()
  } catch {
    return url
  }
}
