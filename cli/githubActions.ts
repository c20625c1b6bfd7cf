/**
 * GitHub Actions workflow commands (`::group::`, `::error ...::`), used when the CLI runs in a
 * GitHub Actions job (GITHUB_ACTIONS=true). Output of a sandbox is untrusted: it is printed between
 * `::stop-commands::` markers so that a line of it can never act as a workflow command.
 */
import { randomBytes } from "node:crypto";

export function underGitHubActions(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GITHUB_ACTIONS === "true";
}

/** A command's message: GitHub reads %, CR and LF escaped. */
function escapeData(text: string): string {
  return text.replaceAll("%", "%25").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}

/** A command's property value: as a message, and `:` and `,` escaped too. */
function escapeProperty(text: string): string {
  return escapeData(text).replaceAll(":", "%3A").replaceAll(",", "%2C");
}

export interface Annotation {
  /** `warning` for an allowed failure; `error` otherwise. */
  level?: "error" | "warning";
  message: string;
  title?: string;
  file?: string;
  line?: number;
}

/** `::error file=...,line=...,title=...::message` (or `::warning`): shown on the run's summary and, with a file, beside its line. */
export function errorAnnotation(annotation: Annotation): string {
  const properties = [
    annotation.file ? `file=${escapeProperty(annotation.file)}` : undefined,
    annotation.line ? `line=${annotation.line}` : undefined,
    annotation.title ? `title=${escapeProperty(annotation.title)}` : undefined,
  ].filter((property) => property !== undefined);
  return `::${annotation.level ?? "error"}${properties.length > 0 ? ` ${properties.join(",")}` : ""}::${escapeData(annotation.message)}\n`;
}

/** A collapsible group holding untrusted text: workflow commands are off inside it. */
export function group(title: string, body: string): string {
  const token = randomBytes(12).toString("hex");
  const text = body === "" || body.endsWith("\n") ? body : `${body}\n`;
  return `::group::${escapeData(title)}\n::stop-commands::${token}\n${text}::${token}::\n::endgroup::\n`;
}

/** Untrusted text outside a group (a failure's excerpt): workflow commands are off while it prints. */
export function inert(body: string): string {
  const token = randomBytes(12).toString("hex");
  const text = body === "" || body.endsWith("\n") ? body : `${body}\n`;
  return `::stop-commands::${token}\n${text}::${token}::\n`;
}
