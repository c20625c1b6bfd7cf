/**
 * Webhooks as a user meets them: `artifact-sandbox webhooks add|list|deliveries|rm` as a
 * subprocess against a real `npm run dev` stack, and a real receiver on this machine (a node
 * HTTP server) that fails the first delivery and takes the second, verifying each signature
 * with the `standardwebhooks` library as a receiver would.
 */
import { rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { EventView } from "../../schemas/events";
import { CreatedWebhook, DeliveryView } from "../../schemas/webhooks";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { type CliResult, runCli } from "./cliProcess";
import { freePort, tempStateDir } from "./devStack";

interface Arrival {
  headers: Record<string, string>;
  body: string;
  at: number;
  answered: number;
}

let stack: DevProcess | undefined;
let stateDir: string | undefined;
let receiver: Server | undefined;
let receiverUrl = "";
const arrivals: Arrival[] = [];

function cli(args: string[]): Promise<CliResult> {
  return runCli(stack?.apiUrl ?? "", args);
}

async function arrivalsUntil(count: number, timeoutMs: number): Promise<Arrival[]> {
  const deadline = Date.now() + timeoutMs;
  while (arrivals.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  return arrivals;
}

beforeAll(async () => {
  // Fails the first delivery (500), takes every later one.
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const answered = arrivals.length === 0 ? 500 : 204;
      const headers = Object.fromEntries(
        Object.entries(request.headers).flatMap(([key, value]) => (typeof value === "string" ? [[key, value]] : [])),
      );
      arrivals.push({ headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now(), answered });
      response.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => receiver?.listen(0, "127.0.0.1", resolve));
  const address = receiver.address();
  if (address === null || typeof address === "string") throw new Error("no receiver port");
  receiverUrl = `http://127.0.0.1:${address.port}/hooks/ci`;
  stateDir = await tempStateDir("webhooks-cli-");
  stack = await startDevProcess({
    apiPort: await freePort(),
    hostPort: await freePort(),
    stateDir,
    env: { ARTIFACT_SANDBOX_LOG_LEVEL: "warn" },
  });
}, 120_000);

afterAll(async () => {
  await stack?.kill();
  await new Promise((resolve) => receiver?.close(resolve));
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe("artifact-sandbox webhooks", () => {
  it("adds an endpoint, delivers a finished job to a receiver that fails then succeeds, and shows both tries", {
    timeout: 90_000,
  }, async () => {
    const added = await cli(["webhooks", "add", receiverUrl, "--events", "job.succeeded,job.failed", "--json"]);
    expect(added.code, added.stderr).toBe(0);
    const webhook = CreatedWebhook.parse(JSON.parse(added.stdout));
    expect(webhook.secret).toMatch(/^whsec_/);

    const listed = await cli(["webhooks", "list"]);
    expect(listed.stdout).toContain(`${webhook.id}  ${receiverUrl}  job.succeeded,job.failed  enabled`);
    expect(listed.stdout).not.toContain(webhook.secret);

    const run = await cli(["run", "hooked", "--", "echo built"]);
    expect(run.code, run.stderr).toBe(0);

    const [first, second] = await arrivalsUntil(2, 30_000);
    // The second try came on the schedule, 5 s after the first.
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(4000);
    expect([first?.answered, second?.answered]).toEqual([500, 204]);
    const verifier = new Webhook(webhook.secret);
    const events = [first, second].map((arrival) => EventView.parse(verifier.verify(arrival?.body ?? "", arrival?.headers ?? {})));
    expect(events[0]).toMatchObject({ type: "job.succeeded", data: { sandboxId: "hooked", status: "succeeded" } });
    expect(second?.headers["webhook-id"]).toBe(first?.headers["webhook-id"]);
    expect(Number(second?.headers["webhook-timestamp"])).toBeGreaterThanOrEqual(Number(first?.headers["webhook-timestamp"]));

    const deliveries = await cli(["webhooks", "deliveries", webhook.id, "--json"]);
    const [delivery] = z.array(DeliveryView).parse(JSON.parse(deliveries.stdout));
    expect(delivery).toMatchObject({ status: "delivered", eventId: events[0]?.id });
    expect(delivery?.attempts.map((attempt) => attempt.responseCode)).toEqual([500, 204]);
    const readable = await cli(["webhooks", "deliveries", webhook.id]);
    expect(readable.stdout).toMatch(/try 1 .* 500 .*answered 500/);

    const removed = await cli(["webhooks", "rm", webhook.id]);
    expect(removed.stdout).toContain(`deleted: ${webhook.id}`);
    expect((await cli(["webhooks", "list"])).stdout).not.toContain(webhook.id);
  });
});
