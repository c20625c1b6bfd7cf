/**
 * `${RUN_ID}` and `${env:NAME}` in a pipeline file's string values, so sandbox names (and
 * anything else) can differ per CI run. Other `${...}` (a shell's own variables in a command)
 * are left alone; `$${RUN_ID}` writes `${RUN_ID}` literally.
 */
import { randomBytes } from "node:crypto";

const PLACEHOLDER = /\$(\$?)\{(RUN_ID|env:([A-Za-z_][A-Za-z0-9_]*))\}/g;

export interface Interpolation {
  runId: string;
  env: NodeJS.ProcessEnv;
}

/** A problem found while interpolating, at the value's path (`jobs.2.sandbox`). */
export interface InterpolationProblem {
  path: string;
  message: string;
}

/**
 * The run's ID: `--run-id`, else the CI system's (GitHub Actions' GITHUB_RUN_ID, GitLab's
 * CI_PIPELINE_ID), else a fresh one; lowercase letters and digits fit in a sandbox ID.
 */
export function runIdFrom(explicit: string | undefined, env: NodeJS.ProcessEnv): string {
  return explicit || env.GITHUB_RUN_ID || env.CI_PIPELINE_ID || randomBytes(5).readUIntBE(0, 5).toString(36).padStart(8, "0");
}

/** The document with every placeholder in its string values replaced; problems name their paths. */
export function interpolate(document: unknown, values: Interpolation): { value: unknown; problems: InterpolationProblem[] } {
  const problems: InterpolationProblem[] = [];
  const visit = (node: unknown, path: (string | number)[]): unknown => {
    if (typeof node === "string") {
      return node.replace(PLACEHOLDER, (whole: string, escaped: string, _what: string, name: string | undefined) => {
        if (escaped) return whole.slice(1);
        if (name === undefined) return values.runId;
        const value = values.env[name];
        if (value === undefined) problems.push({ path: path.join(".") || "(file)", message: `\${env:${name}}: ${name} is not set` });
        return value ?? "";
      });
    }
    if (Array.isArray(node)) return node.map((item, index) => visit(item, [...path, index]));
    if (node !== null && typeof node === "object") {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, visit(item, [...path, key])]));
    }
    return node;
  };
  return { value: visit(document, []), problems };
}
