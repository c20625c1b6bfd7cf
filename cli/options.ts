/** Parsers for flag values, with messages that say what was expected. */
import { InvalidArgumentError } from "commander";

/** `--env K=V`, repeatable, into one record. */
export function collectEnv(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf("=");
  if (at <= 0) throw new InvalidArgumentError(`expected NAME=VALUE, got "${value}"`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

/** A repeatable flag, collected in order. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function integer(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 0) throw new InvalidArgumentError(`expected a whole number, got "${value}"`);
  return number;
}

/**
 * The command after `--` as one `/bin/sh -c` string: a single argument is taken as shell text
 * (`-- 'make && make test'`); several are quoted so each stays one word (`-- echo "a b"`).
 */
export function shellCommand(words: string[]): string {
  if (words.length === 1) return words[0] ?? "";
  return words.map((word) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`)).join(" ");
}
