/**
 * Running the `artifact-sandbox` CLI as CI does: a subprocess of this checkout's bin, with pipes
 * (not a terminal) for its output, against a given stack.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

export const CLI_BIN = join(process.cwd(), "bin/artifact-sandbox.mjs");
/** Any escape sequence: what a live table or a colour would leave in a CI log. */
export const ANSI_ESCAPE = new RegExp(`${String.fromCharCode(0x1b)}\\[`);

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the CLI with the stack's URL and no key; `env` adds to (or overrides) this process's environment. */
export function startCli(apiUrl: string, args: string[], env: Record<string, string> = {}, cwd?: string): ChildProcess {
  return spawn(process.execPath, [CLI_BIN, ...args], {
    cwd,
    env: { ...process.env, ARTIFACT_SANDBOX_URL: apiUrl, ARTIFACT_SANDBOX_KEY: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Everything the CLI printed, once it has exited. */
export function finished(child: ChildProcess): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

/** Runs the CLI to its end with `stdin` as its input (none by default, as CI gives it). */
export function runCli(apiUrl: string, args: string[], stdin = ""): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    env: { ...process.env, ARTIFACT_SANDBOX_URL: apiUrl, ARTIFACT_SANDBOX_KEY: "" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const result = finished(child);
  child.stdin?.end(stdin);
  return result;
}
