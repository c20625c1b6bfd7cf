/**
 * THE SEAM between local and deployed: a stand-in for workerd's container handle
 * (`ctx.container`) that forwards every container call over HTTP to the local container host
 * (container/local), which plays the SDK's container on this machine.
 *
 * Deployed, the Sandbox Durable Object's `ctx.container` is workerd's handle to a Cloudflare
 * Container. Under `wrangler dev` without a Docker engine it is absent, so the local Sandbox
 * class (sandbox/sandboxObject.ts) puts this object there before the SDK's constructor runs.
 * Everything above it (the SDK's Sandbox, the containers library, its client and error classes)
 * runs unchanged; only where the container's bytes go differs.
 */
import { z } from "zod";
import { HostError } from "../schemas/sandboxHost";

export interface LocalContainerHost {
  url: string;
  token: string;
}

// Error texts the containers library recognises (@cloudflare/containers: isNotListeningError,
// isNoInstanceError, the monitor's exit-code errors); workerd's real handle throws these.
const NOT_LISTENING = "the container is not listening";
const NO_INSTANCE = "there is no container instance that can be provided to this durable object";
const UNEXPECTED_EXIT = "container exited with unexpected exit code:";
/**
 * What Cloudflare's platform says when a start would exceed the class's `max_instances`; the
 * SDK recognises it (reason `max_container_instances_exceeded`) and so does
 * sandbox/errors.ts's isContainerCapacityError.
 */
export const MAX_INSTANCES_EXCEEDED =
  "Maximum number of running container instances exceeded. Try again later, or try configuring a higher value for max_instances";

const MonitorAnswer = z.object({ exitCode: z.number().int() });
const StateAnswer = z.object({ running: z.boolean() });

/** The part of workerd's `Container` handle that the SDK and the containers library call. */
export class LocalContainerHandle {
  private isRunning = false;
  /** Settles once the host has started the container (or failed to). */
  private started: Promise<void> = Promise.resolve();
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: LocalContainerHost,
    /** The sandbox's name: the host keeps one container and one workspace per key. */
    private readonly key: () => Promise<string>,
  ) {}

  get running(): boolean {
    return this.isRunning;
  }

  /**
   * Whether the host runs this sandbox's container, whoever started it: after the Worker runtime
   * restarts (a reload of `npm run dev`) a new handle starts out not `running` while the host's
   * container, and whatever command it still runs, lives on.
   */
  async runsOnHost(): Promise<boolean> {
    if (this.isRunning) return true;
    const response = await this.hostCall("GET", "");
    if (!response.ok) throw new Error(`${NO_INSTANCE}: the local container host answered ${response.status}: ${await response.text()}`);
    return StateAnswer.parse(await response.json()).running;
  }

  /** Like workerd's: returns at once; the outcome shows in `monitor()` and in port fetches. */
  start(options?: ContainerStartupOptions): void {
    this.isRunning = true;
    const body = JSON.stringify({ env: options?.env ?? {}, enableInternet: options?.enableInternet ?? true });
    this.started = this.hostCall("POST", "/start", body).then(async (response) => {
      if (response.ok) return;
      const text = await response.text();
      // Not running from here on, before anyone sees the failure: the containers library asks
      // `running` once a port fetch fails, to tell a start that failed from one still booting.
      this.isRunning = false;
      if (hostRefusal(text)?.code === "MAX_CONTAINERS") throw new Error(MAX_INSTANCES_EXCEEDED);
      throw new Error(`${NO_INSTANCE}: the local container host could not start it (${text})`);
    });
    this.exited = this.watchExit(this.started);
  }

  monitor(): Promise<void> {
    return this.exited;
  }

  async destroy(): Promise<void> {
    this.isRunning = false;
    const response = await this.hostCall("DELETE", "");
    await response.body?.cancel();
  }

  signal(signo: number): void {
    void this.hostCall("POST", "/signal", JSON.stringify({ signal: signo })).then(
      (response) => response.body?.cancel(),
      (error: unknown) => console.warn(`local container: signal ${signo} not delivered`, error),
    );
  }

  getTcpPort(port: number): { fetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response> } {
    return { fetch: (input, init) => this.fetchPort(port, new Request(input, init)) };
  }

  private async fetchPort(port: number, request: Request): Promise<Response> {
    await this.started.catch((error: unknown) => {
      throw new Error(`${NOT_LISTENING}: ${error instanceof Error ? error.message : String(error)}`);
    });
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.set("authorization", `Bearer ${this.host.token}`);
    const response = await fetch(`${await this.containerUrl()}/ports/${port}${url.pathname}${url.search}`, {
      method: request.method,
      headers,
      body: request.body,
      signal: request.signal,
    }).catch((error: unknown) => {
      throw new Error(`${NO_INSTANCE}: ${this.unreachable(error)}`);
    });
    if (response.status === 502) {
      const refusal = hostRefusal(
        await response
          .clone()
          .text()
          .catch(() => ""),
      );
      if (refusal?.code === "NOT_LISTENING") throw new Error(`${NOT_LISTENING} on port ${port}: ${refusal.message}`);
    }
    return response;
  }

  /** Resolves when the container exits with 0; rejects with the library's exit-code error otherwise. */
  private async watchExit(started: Promise<void>): Promise<void> {
    try {
      await started;
      const response = await this.hostCall("GET", "/monitor");
      const answer = MonitorAnswer.parse(await response.json());
      if (answer.exitCode !== 0) throw new Error(`${UNEXPECTED_EXIT} ${answer.exitCode}`);
    } finally {
      this.isRunning = false;
    }
  }

  private async containerUrl(): Promise<string> {
    return `${this.host.url}/v1/containers/${await this.key()}`;
  }

  private async hostCall(method: string, path: string, body?: string): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.host.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    return fetch(`${await this.containerUrl()}${path}`, { method, headers, body }).catch((error: unknown) => {
      throw new Error(`${NO_INSTANCE}: ${this.unreachable(error)}`);
    });
  }

  private unreachable(error: unknown): string {
    const reason = error instanceof Error ? error.message : String(error);
    return `the local container host at ${this.host.url} is not reachable (${reason}); is \`npm run dev\` running?`;
  }
}

/** The host's own refusal (as opposed to an answer from the container it proxies to), if the body is one. */
function hostRefusal(body: string): HostError["error"] | undefined {
  try {
    const parsed = HostError.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data.error : undefined;
  } catch {
    return undefined;
  }
}
