/**
 * Vitest global setup: a real HTTP webhook receiver on 127.0.0.1 for the Worker tests, which run
 * in workerd and cannot listen themselves. Each test picks its own path, whose segments say how
 * to answer: `/r/{name}/fail/{n}` fails the first n requests with 500 then answers 200,
 * `/r/{name}/slow/{ms}` answers 200 after ms, `/r/{name}/status/{code}` always answers code,
 * `/r/{name}/throttle/{seconds}` answers 429 with that Retry-After.
 * `GET /received/{name}` lists what arrived there (headers and raw body), for the test to verify.
 */
import { createServer, type IncomingMessage } from "node:http";

// Declares what it provides (ProvidedContext) where the Worker tests read it.
import type {} from "../worker/support/receiver";

interface Received {
  headers: Record<string, string>;
  body: string;
  at: number;
  answered: number;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString("utf8");
}

export default async function setup(project: { provide(key: "webhookReceiver", value: { url: string }): void }) {
  const received = new Map<string, Received[]>();
  const server = createServer(async (request, response) => {
    const [, kind, name = "", mode, arg = "0"] = (request.url ?? "").split("?")[0]?.split("/") ?? [];
    if (request.method === "GET" && kind === "received") {
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(received.get(name) ?? []));
      return;
    }
    if (kind !== "r") {
      response.writeHead(404).end();
      return;
    }
    const body = await readBody(request);
    const list = received.get(name) ?? [];
    received.set(name, list);
    let status = 200;
    if (mode === "fail" && list.length < Number(arg)) status = 500;
    if (mode === "status") status = Number(arg);
    if (mode === "throttle") status = 429;
    if (mode === "slow") await new Promise((resolve) => setTimeout(resolve, Number(arg)));
    const headers = Object.fromEntries(
      Object.entries(request.headers).flatMap(([key, value]) => (typeof value === "string" ? [[key, value]] : [])),
    );
    list.push({ headers, body, at: Date.now(), answered: status });
    response.writeHead(status, mode === "throttle" ? { "retry-after": arg } : {}).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the webhook receiver has no port");
  project.provide("webhookReceiver", { url: `http://127.0.0.1:${address.port}` });
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
