/**
 * The README's CI example, taken from the README and run as written (bash, curl, jq) against a real
 * `npm run dev` stack: upload a tree, build, test, pass the build's artifacts to another sandbox,
 * fetch the package as one archive.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { freePort, tempStateDir } from "./devStack";

const run = promisify(execFile);

describe("the README's CI pipeline example", () => {
  let stack: DevProcess | undefined;
  const cleanup: string[] = [];

  afterAll(async () => {
    await stack?.kill();
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it("runs as written and produces the release", { timeout: 180_000 }, async () => {
    const stateDir = await tempStateDir("ci-example-");
    const out = await mkdtemp(join(tmpdir(), "ci-example-out-"));
    cleanup.push(stateDir, out);
    stack = await startDevProcess({ apiPort: await freePort(), hostPort: await freePort(), stateDir });

    const readme = await readFile("README.md", "utf8");
    const block = /<!-- ci-example:start -->\n```bash\n([\s\S]*?)```\n<!-- ci-example:end -->/.exec(readme)?.[1];
    if (!block) throw new Error("README.md has no ci-example block");
    const script = join(out, "..", `ci-example-${process.pid}.sh`);
    await writeFile(script, block);
    cleanup.push(script);
    const { stdout } = await run("bash", [script, "examples/hello-project", out], {
      env: { ...process.env, ARTIFACT_SANDBOX_URL: stack.apiUrl },
      timeout: 150_000,
    });
    // The build's live log, each job's status, and where the release went.
    expect(stdout).toContain('"text":"built dist/\\n"');
    expect(stdout).toContain("build: succeeded\ntest: succeeded\npackage: succeeded");

    const { stdout: listing } = await run("tar", ["tzvf", join(out, "release.tar.gz")]);
    expect(listing).toMatch(/^-rwxr-xr-x .* dist\/run\.sh$/m);
    expect(listing).toMatch(/ dist\/hello\.js$/m);
  });
});
