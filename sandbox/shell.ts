/**
 * Shell text for the commands this project sends to a sandbox. Cloudflare's container server
 * pastes every `exec` into one long-lived bash session: a top-level `exit` would end that shell
 * and a `cd` or variable would leak into the next command. Each of our commands therefore runs
 * in a subshell, where `exit` and `cd` touch only itself.
 */

export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

/** `script` in a subshell of the session's shell (newlines kept, so a heredoc or comment ends). */
export function inSubshell(script: string): string {
  return `(\n${script}\n)`;
}
