/** Checks that keep the deployable pieces in step: image tag, deploy dry run, generated types. */
import { execFile } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

async function installedSdkVersion(): Promise<string> {
  const manifest: unknown = JSON.parse(await readFile("node_modules/@cloudflare/sandbox/package.json", "utf8"));
  if (typeof manifest !== "object" || manifest === null || !("version" in manifest) || typeof manifest.version !== "string") {
    throw new Error("@cloudflare/sandbox has no version");
  }
  return manifest.version;
}

async function dockerfileBaseImage(): Promise<string> {
  const dockerfile = await readFile("container/Dockerfile", "utf8");
  const from = dockerfile.split("\n").find((line) => line.startsWith("FROM "));
  if (!from) throw new Error("container/Dockerfile has no FROM line");
  return from.slice("FROM ".length).trim();
}

describe("deployment configuration", () => {
  it("pins the sandbox image to the installed @cloudflare/sandbox version", async () => {
    expect(await dockerfileBaseImage()).toBe(`docker.io/cloudflare/sandbox:${await installedSdkVersion()}-python`);
  });

  it("passes `wrangler deploy --dry-run`", async () => {
    // Building ./container/Dockerfile needs a Docker engine, even in a dry run; the dry run
    // checks everything else with the Dockerfile's own base image in its place.
    const config = (await readFile("wrangler.jsonc", "utf8")).replace(
      '"image": "./container/Dockerfile"',
      `"image": "${await dockerfileBaseImage()}"`,
    );
    expect(config).not.toContain("./container/Dockerfile");
    const dryRunConfig = "wrangler.dry-run.jsonc";
    await writeFile(dryRunConfig, config);
    try {
      const { stdout } = await run("npx", ["wrangler", "deploy", "--dry-run", "--outdir", ".wrangler/dry-run", "-c", dryRunConfig], {
        timeout: 120_000,
      });
      expect(stdout).toContain("--dry-run: exiting now.");
      expect(stdout).toContain("artifact-sandbox-jobs");
    } finally {
      await rm(dryRunConfig, { force: true });
    }
  }, 150_000);

  it("has committed Env types that match wrangler.jsonc (npm run types regenerates them)", async () => {
    const { stdout } = await run("npx", ["wrangler", "types", "--check"], { timeout: 120_000 });
    expect(stdout).toContain("up to date");
  }, 150_000);
});
