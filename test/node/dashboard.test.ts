/**
 * The dashboard (`/`) and the API reference (`/docs`) in a real headless Chromium, against real
 * `npm run dev` stacks: a pipeline submitted with POST /v1/jobs is watched to its end on the batch
 * page's graph, a job's log is followed live and an artifact downloaded from its page, every
 * artifact of a 2,500-file job reached with "Show more", a sandbox deleted; and a stack that
 * requires keys (as deployed) asks for one. A screenshot of every page is saved under the OS
 * tmpdir (the path is printed). Skipped only when no chromium binary exists.
 */

import { execFile } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { promisify } from "node:util";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArtifactSandboxClient } from "../../client";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { findChromium, launchChromium, Screenshots } from "./browser";
import { freePort, tempStateDir } from "./devStack";

const CHROMIUM = findChromium();
if (!CHROMIUM) console.warn("dashboard.test.ts skipped: no chromium binary (apt-get install chromium, or set CHROMIUM_PATH)");

const run = promisify(execFile);

/** Starts a stack on fresh ports and state; `stop` kills it and removes the state. */
async function startStack(
  prefix: string,
  env: Record<string, string> = {},
): Promise<{ stack: DevProcess; stateDir: string; stop(): Promise<void> }> {
  const stateDir = await tempStateDir(prefix);
  const stack = await startDevProcess({
    apiPort: await freePort(),
    hostPort: await freePort(),
    stateDir,
    env: { ARTIFACT_SANDBOX_LOG_LEVEL: "warn", ...env },
  });
  return {
    stack,
    stateDir,
    async stop() {
      await stack.kill();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

describe.skipIf(!CHROMIUM)("the dashboard in headless Chromium", () => {
  let browser: Browser;
  let screenshots: Screenshots;

  beforeAll(async () => {
    browser = await launchChromium(CHROMIUM ?? "");
    screenshots = await Screenshots.create("dashboard-screens-");
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  describe("on a local stack, without a key", () => {
    let local: Awaited<ReturnType<typeof startStack>>;
    let page: Page;
    let client: ArtifactSandboxClient;
    let batchId = "";
    let lintJobId = "";
    /** Every request of the page that failed or was answered 400 and above, except the API's own (some answer 404 by design). */
    const pageFailures: string[] = [];

    beforeAll(async () => {
      local = await startStack("dashboard-");
      client = new ArtifactSandboxClient({ baseUrl: local.stack.apiUrl });
      page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      // A log stream cut by a navigation fails too: the API's requests are left out.
      const own = (url: string) => !new URL(url).pathname.startsWith("/v1/");
      page.on("requestfailed", (request) => {
        if (own(request.url())) pageFailures.push(`${request.url()} failed`);
      });
      page.on("response", (response) => {
        if (response.status() >= 400 && own(response.url())) pageFailures.push(`${response.url()} ${response.status()}`);
      });
    }, 120_000);

    afterAll(async () => {
      await page?.close();
      await local?.stop();
    });

    it("watches a pipeline finish on its batch page's graph, following the build's log live from its node", {
      timeout: 120_000,
    }, async () => {
      const batch = await client.submitBatch([
        {
          name: "build",
          sandboxId: "web",
          job: {
            type: "run",
            command:
              'for i in 1 2 3 4 5 6 7 8; do echo "building step $i"; sleep 1; done; echo "a warning" >&2; mkdir -p dist && echo "hello from the build" > dist/app.txt',
            artifacts: ["dist/**"],
          },
        },
        { name: "test", sandboxId: "web", needs: ["build"], job: { type: "run", command: "echo tests passed" } },
        { name: "lint", sandboxId: "checks", job: { type: "run", command: "echo lint ok" } },
        {
          name: "package",
          sandboxId: "checks",
          needs: ["test", "lint"],
          job: {
            type: "run",
            command: "ls in/dist > index.txt",
            inputs: [{ from: "build", artifacts: ["dist/**"], path: "/workspace/in" }],
            artifacts: ["index.txt"],
          },
        },
      ]);
      batchId = batch.batchId;
      lintJobId = batch.jobs.find((job) => job.name === "lint")?.id ?? "";

      // From the front page to the batch, as a user would.
      await page.goto(`${local.stack.apiUrl}/`);
      await page.getByRole("link", { name: "Batches" }).click();
      await page.locator(`tr[data-batch-id="${batchId}"] a`).waitFor();
      await screenshots.take(page, "batches");
      await page.locator(`tr[data-batch-id="${batchId}"] a`).click();
      const graph = page.getByRole("img", { name: "Pipeline graph" });
      await expect.poll(() => graph.locator("a.node").count()).toBe(4);
      // test needs build; package needs test and lint, and build too through its input.
      expect(await graph.locator("path.edge").count()).toBe(4);

      // The build's node while it runs, then its page: its log arrives while it still runs.
      const buildNode = graph.locator('a.node[data-job-name="build"]');
      await buildNode.and(page.locator('[data-status="running"]')).waitFor({ timeout: 30_000 });
      await screenshots.take(page, "batch-running");
      await buildNode.click();
      const log = page.getByLabel("Log");
      await log.getByText("building step 1").waitFor({ timeout: 20_000 });
      expect(await page.locator(".log-state").textContent()).toBe("streaming…");
      expect(await page.locator("h1 .badge").getAttribute("data-status")).toBe("running");
      await page.locator(".log-state").getByText("ended: succeeded, exit code 0").waitFor({ timeout: 30_000 });
      await expect.poll(() => log.textContent()).toContain("building step 8");
      expect(await log.locator(".stderr").textContent()).toBe("a warning\n");

      // Back to the batch: every node turns succeeded without a reload.
      await page.goBack();
      await page.locator("h1 .badge[data-status=succeeded]").waitFor({ timeout: 60_000 });
      expect(await graph.locator('a.node[data-status="succeeded"]').count()).toBe(4);
      expect(await page.locator("h1").textContent()).toContain(batchId);
      await screenshots.take(page, "batch-succeeded");
      // The page's own files (its script, styles) all loaded.
      expect(pageFailures).toEqual([]);
      // Its icon is inline, so a browser asks for no /favicon.ico (a 404). Headless Chromium asks
      // for none either way, and Playwright reports no favicon request, so the markup is checked.
      expect(await page.locator('link[rel="icon"]').getAttribute("href")).toBe("data:,");
    });

    it("shows a finished job's exit code, tries, timings and artifacts, and downloads an artifact", { timeout: 60_000 }, async () => {
      await page.getByRole("img", { name: "Pipeline graph" }).locator('a.node[data-job-name="build"]').click();
      await page.locator("h1 .badge[data-status=succeeded]").waitFor();
      expect(await page.locator('[data-fact="Exit code"]').textContent()).toBe("0");
      expect(await page.locator('[data-fact="Attempts"]').textContent()).toBe("1");
      expect(await page.locator('[data-fact="Ran"]').textContent()).toMatch(/\d+(\.\d+)? s$/);
      expect(await page.locator("table.tries tbody tr").count()).toBe(1);
      await page.locator(".log-state").getByText("ended: succeeded").waitFor();
      expect(await page.getByLabel("Log").textContent()).toContain("building step 8");

      const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "dist/app.txt" }).click()]);
      expect(download.suggestedFilename()).toBe("app.txt");
      const saved = await download.path();
      expect(await readFile(saved, "utf8")).toBe("hello from the build\n");
      await screenshots.take(page, "job");
    });

    it("lists the jobs on the front page, filtered by status and sandbox", { timeout: 60_000 }, async () => {
      await client.submit("web", { type: "run", command: "exit 3" }).then((job) => client.waitForJob(job.id, { timeoutMs: 30_000 }));
      await page.goto(`${local.stack.apiUrl}/`);
      const rows = page.locator("table.jobs tbody tr");
      await expect.poll(() => rows.count()).toBe(5);
      await page.getByLabel("Status").selectOption("failed");
      await expect.poll(() => rows.count()).toBe(1);
      expect(await rows.locator("td").nth(6).textContent()).toBe("3");
      await page.getByLabel("Status").selectOption("");
      await page.getByLabel("Sandbox").selectOption("checks");
      await expect.poll(() => rows.count()).toBe(2);
      expect(new URL(page.url()).hash).toBe("#/jobs?sandbox=checks");
      await page.getByLabel("Created").selectOption("15m");
      await expect.poll(() => rows.count()).toBe(2);
      await screenshots.take(page, "jobs");
    });

    it("deletes a sandbox from the sandboxes page", { timeout: 60_000 }, async () => {
      await page.getByRole("link", { name: "Sandboxes" }).click();
      await page.locator('tr[data-sandbox-id="checks"]').waitFor();
      await screenshots.take(page, "sandboxes");
      page.once("dialog", (dialog) => void dialog.accept());
      await page.getByRole("button", { name: "Delete checks" }).click();
      await page.getByText("Deleted checks (0 jobs cancelled).").waitFor();
      await expect.poll(() => page.locator('tr[data-sandbox-id="checks"]').count()).toBe(0);
      expect((await client.listSandboxes()).map((sandbox) => sandbox.sandboxId)).toEqual(["web"]);
      // The lists ask each listed sandbox for its jobs: a deleted sandbox's jobs leave them.
      await page.getByRole("link", { name: "Jobs" }).click();
      await expect.poll(() => page.locator("table.jobs tbody tr").count()).toBe(3);
      await page.goto(`${local.stack.apiUrl}/#/jobs/${lintJobId}`);
      await page.getByRole("heading", { name: "lint" }).waitFor();
    });

    it("cancels a running job from its page, and a running batch from its page", { timeout: 90_000 }, async () => {
      const job = await client.submit("slow", { type: "run", command: "echo started; sleep 60" });
      await page.goto(`${local.stack.apiUrl}/#/jobs/${job.id}`);
      await page.getByLabel("Log").getByText("started").waitFor({ timeout: 30_000 });
      await page.getByRole("button", { name: "Cancel job" }).click();
      await page.locator("h1 .badge.status-cancelled").waitFor({ timeout: 30_000 });
      expect((await client.getJob(job.id)).error?.code).toBe("CANCELLED");

      const batch = await client.submitBatch([
        { name: "long", sandboxId: "slow", job: { type: "run", command: "sleep 60" } },
        { name: "after", sandboxId: "slow", needs: ["long"], job: { type: "run", command: "true" } },
      ]);
      await page.goto(`${local.stack.apiUrl}/#/batches/${batch.batchId}`);
      await page.getByRole("button", { name: "Cancel batch" }).click();
      await page.locator("h1 .badge[data-status=failed]").waitFor({ timeout: 30_000 });
      const graph = page.getByRole("img", { name: "Pipeline graph" });
      // Every unfinished job is cancelled, the queued one too.
      expect(await graph.locator("a.node.status-cancelled").count()).toBe(2);
      await screenshots.take(page, "batch-cancelled");
    });

    it("reaches every artifact of a job past the record's first 200 with Show more, a page at a time", { timeout: 120_000 }, async () => {
      const FILES = 2_500;
      const job = await client.submit("many", {
        type: "run",
        command: `mkdir many && for i in $(seq -w 1 ${FILES}); do echo "file $i" > many/f$i.txt; done`,
        artifacts: ["many/**"],
      });
      expect((await client.waitForJob(job.id, { timeoutMs: 100_000 })).artifactIndex?.files).toBe(FILES);
      await page.goto(`${local.stack.apiUrl}/#/jobs/${job.id}`);
      const rows = page.locator("table.artifacts tbody tr");
      const count = page.locator(".artifact-count");
      const more = page.getByRole("button", { name: "Show more" });
      await count.getByText("Showing 200 of 2,500 files").waitFor({ timeout: 30_000 });
      expect(await rows.count()).toBe(200);
      // Before the rows grow: a full-page screenshot of 2,500 of them takes longer than its timeout.
      await screenshots.take(page, "job-many-artifacts");
      // The record's 200, the rest of the first page, a whole page, and the last page's 500.
      for (const shown of ["1,000", "2,000"]) {
        await more.click();
        await count.getByText(`Showing ${shown} of 2,500 files`).waitFor();
      }
      await more.click();
      await count.getByText("2,500 files", { exact: true }).waitFor();
      expect(await more.isVisible()).toBe(false);
      const paths = await rows.locator("td:first-child a").allTextContents();
      expect(paths).toEqual(Array.from({ length: FILES }, (_, i) => `many/f${String(i + 1).padStart(4, "0")}.txt`));

      const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "many/f2500.txt" }).click()]);
      expect(await readFile(await download.path(), "utf8")).toBe("file 2500\n");
    });

    it("serves the page at / from the static assets, and keeps every API path on the Worker", async () => {
      const page = await fetch(`${local.stack.apiUrl}/`);
      expect(page.headers.get("content-type")).toContain("text/html");
      expect(await page.text()).toContain('<script type="module" src="/generated/dashboard.js"></script>');
      const api = await fetch(`${local.stack.apiUrl}/v1/index.html`);
      expect(api.status).toBe(404);
      expect(await api.json()).toMatchObject({ error: { code: "ROUTE_NOT_FOUND" } });
    });

    it("serves the API reference at /docs from the OpenAPI document, linked from the dashboard", { timeout: 60_000 }, async () => {
      await page.getByRole("link", { name: "API docs" }).click();
      await page.waitForURL(`${local.stack.apiUrl}/docs`);
      await page.locator(".swagger-ui .info .title").getByText("artifact-sandbox").waitFor({ timeout: 30_000 });
      await page.locator(".opblock-summary-path").filter({ hasText: "/v1/sandboxes/{sandboxId}/jobs" }).first().waitFor();
      expect(await page.locator(".opblock").count()).toBeGreaterThan(10);
      await page
        .getByRole("button", { name: /Authorize/ })
        .first()
        .waitFor();
      await screenshots.take(page, "docs");
    });
  });

  describe("on a stack that requires API keys, as deployed", () => {
    let keyed: Awaited<ReturnType<typeof startStack>>;
    let page: Page;

    beforeAll(async () => {
      keyed = await startStack("dashboard-keys-", { REQUIRE_API_KEYS: "1" });
      page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    }, 120_000);

    afterAll(async () => {
      await page?.close();
      await keyed?.stop();
    });

    it("asks for a key, refuses a wrong one, keeps the right one in session storage only, and streams a log with it", {
      timeout: 120_000,
    }, async () => {
      const { stdout } = await run("node_modules/.bin/tsx", ["scripts/keys.ts", "create", "acme"], {
        env: { ...process.env, ARTIFACT_SANDBOX_STATE_DIR: keyed.stateDir },
      });
      const key = stdout.trim().split("\n").at(-1) ?? "";
      const client = new ArtifactSandboxClient({ baseUrl: keyed.stack.apiUrl, apiKey: key });
      const job = await client.submit("keyed", { type: "run", command: "echo with a key" });

      await page.goto(`${keyed.stack.apiUrl}/`);
      await page.getByRole("heading", { name: "Sign in with an API key" }).waitFor();
      await screenshots.take(page, "key-prompt");
      await page.getByLabel("API key").fill(`as_live_${"0".repeat(56)}`);
      await page.getByRole("button", { name: "Open dashboard" }).click();
      await page.getByText("That key was not accepted").waitFor();

      await page.getByLabel("API key").fill(key);
      await page.getByRole("button", { name: "Open dashboard" }).click();
      await page.locator(`tr[data-job-id="${job.id}"]`).waitFor({ timeout: 20_000 });
      expect(await page.evaluate(() => ({ session: Object.values(sessionStorage), local: Object.keys(localStorage) }))).toEqual({
        session: [key],
        local: [],
      });

      // The log comes through fetch with the key (an EventSource could not send it).
      await page.locator(`tr[data-job-id="${job.id}"] a`).first().click();
      await page.locator(".log-state").getByText("ended: succeeded").waitFor({ timeout: 30_000 });
      expect(await page.getByLabel("Log").textContent()).toBe("with a key\n");

      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByRole("heading", { name: "Sign in with an API key" }).waitFor();
      expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    });
  });
});
