/**
 * The host's containers, one per sandbox key: started on demand (a concurrent start joins the
 * one under way), remembered after they exit for `monitor`, ended after sitting idle, and
 * leased to the proxy while a request to the agent is open so that they are not reaped mid-stream.
 * At most `maxContainers` run or start at once, as `max_instances` caps a Container class.
 */
import { availableParallelism } from "node:os";
import { join } from "node:path";
import pLimit from "p-limit";
import { type ContainerSpec, ContainerStartError, LocalContainer } from "./container";
import type { ReferenceServer } from "./containerServer";
import type { SandboxUids } from "./identity";
import { SOCKET_NAME } from "./isolation";
import type { CgroupLimiter } from "./limits";
import { containerNetworkPolicy, type NetworkPolicy, sandboxNetwork } from "./network";
import { prepareOwnedDir, sealDir } from "./workspace";

export interface ContainerPoolOptions {
  /** Parent of the per-key workspaces. */
  workspaceRoot: string;
  /** Parent of the per-key socket directories (short: a socket path must fit in 108 bytes). */
  runtimeRoot: string;
  generatedEtcDir: string;
  agentFile: string;
  /** Cloudflare's server, run behind the agent's relay; undefined runs the agent itself. */
  referenceServer: ReferenceServer | undefined;
  /** Containers that may run (or start) at once; one more start is refused with CapacityReachedError. */
  maxContainers: number;
  /** The host-wide policy; a container's start request may still turn its own network off. */
  network: NetworkPolicy;
  /** Where writeNetworkFiles put the resolv.conf files. */
  networkFilesDir: string;
  /** Per-key host uids; undefined when the host is not root and every container runs as its uid. */
  uids: SandboxUids | undefined;
  limiter: CgroupLimiter | undefined;
  idleMs: number;
  readyTimeoutMs: number;
  log: (line: string) => void;
}

export interface StartRequest {
  env?: Record<string, string>;
  enableInternet?: boolean;
}

/** A start past `maxContainers`: the local form of Cloudflare's refusal past `max_instances`. */
export class CapacityReachedError extends Error {
  override readonly name = "CapacityReachedError";
}

interface Slot {
  current?: LocalContainer;
  starting?: Promise<LocalContainer>;
  /** Aborted by a destroy: the start under way, if still waiting for its turn to boot, never boots. */
  startCancel?: AbortController;
  lastUsedAt: number;
  openRequests: number;
}

/**
 * Containers that boot at once: a boot is seconds of CPU (the server's runtime loading), and a
 * hundred of them at once left the Worker on the same cores unable to answer for 20 s. The rest
 * wait their turn, already counted against `maxContainers`.
 */
const BOOTS_AT_ONCE = Math.max(2, availableParallelism());

export class ContainerPool {
  private readonly slots = new Map<string, Slot>();
  private readonly reaper: NodeJS.Timeout;
  private readonly boots = pLimit(BOOTS_AT_ONCE);

  constructor(private readonly options: ContainerPoolOptions) {
    this.reaper = setInterval(() => this.reapIdle(), Math.min(options.idleMs, 30_000));
    this.reaper.unref();
  }

  private slot(key: string): Slot {
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { lastUsedAt: Date.now(), openRequests: 0 };
      this.slots.set(key, slot);
    }
    return slot;
  }

  /** Starts the key's container unless it runs already; resolves once its agent listens. */
  start(key: string, request: StartRequest): Promise<LocalContainer> {
    const slot = this.slot(key);
    slot.lastUsedAt = Date.now();
    if (slot.current?.running) return Promise.resolve(slot.current);
    if (!slot.starting && this.activeCount() >= this.options.maxContainers) {
      return Promise.reject(
        new CapacityReachedError(
          `Maximum number of running container instances exceeded: ${this.options.maxContainers} of ${this.options.maxContainers} are running or starting (SANDBOX_MAX_CONTAINERS)`,
        ),
      );
    }
    if (!slot.starting) {
      const cancel = new AbortController();
      const starting: Promise<LocalContainer> = this.launch(key, request, cancel.signal).then(
        (container) => {
          if (slot.starting === starting) slot.starting = undefined;
          slot.current = container;
          // Idle time counts from when it was ready, not from when it was asked for.
          slot.lastUsedAt = Date.now();
          return container;
        },
        (error: unknown) => {
          if (slot.starting === starting) slot.starting = undefined;
          throw error;
        },
      );
      slot.starting = starting;
      slot.startCancel = cancel;
    }
    return slot.starting;
  }

  /** Containers that run or are starting now. */
  private activeCount(): number {
    let count = 0;
    for (const slot of this.slots.values()) if (slot.starting || slot.current?.running) count++;
    return count;
  }

  private async launch(key: string, request: StartRequest, cancel: AbortSignal): Promise<LocalContainer> {
    const { options } = this;
    const uid = options.uids?.uidFor(key);
    const workspaceDir = await prepareOwnedDir(join(options.workspaceRoot, key), uid);
    const socketDir = await prepareOwnedDir(join(options.runtimeRoot, key), uid);
    const spec: ContainerSpec = {
      key,
      uid,
      socketPath: join(socketDir, SOCKET_NAME),
      cgroupProcs: options.limiter?.prepare(key) ?? [],
      readyTimeoutMs: options.readyTimeoutMs,
      log: options.log,
      layout: {
        workspaceDir,
        socketDir,
        generatedEtcDir: options.generatedEtcDir,
        agentFile: options.agentFile,
        nodeBinary: process.execPath,
        referenceServer: options.referenceServer,
        env: request.env ?? {},
        network: sandboxNetwork(containerNetworkPolicy(options.network, request.enableInternet), options.networkFilesDir),
      },
    };
    const container = await this.bootInTurn(spec, cancel);
    // The agent listens now; nothing else in the container needs to write next to its socket.
    await sealDir(socketDir, uid);
    return container;
  }

  /**
   * Boots when the limiter gives a turn. Cancelled while it waits, it fails at once (it no longer
   * counts against the cap, and a destroy need not wait for the boots ahead of it); a boot under
   * way is let finish, for its caller to end.
   */
  private bootInTurn(spec: ContainerSpec, cancel: AbortSignal): Promise<LocalContainer> {
    const cancelled = () => new ContainerStartError(`container ${spec.key} was destroyed before its turn to boot came`);
    let booting = false;
    const boot = this.boots(() => {
      if (cancel.aborted) throw cancelled();
      booting = true;
      return LocalContainer.start(spec);
    });
    return new Promise<LocalContainer>((resolve, reject) => {
      const onCancel = () => {
        if (booting) return;
        // The turn, when it comes, fails by itself; nobody waits for it.
        boot.catch(() => undefined);
        reject(cancelled());
      };
      cancel.addEventListener("abort", onCancel, { once: true });
      boot.then(resolve, reject).finally(() => cancel.removeEventListener("abort", onCancel));
    });
  }

  /** The key's container if it runs now. */
  running(key: string): LocalContainer | undefined {
    const current = this.slots.get(key)?.current;
    return current?.running ? current : undefined;
  }

  /** Resolves with the exit code of the current instance once it exits; the last one's (or 0) if none runs. */
  async monitor(key: string): Promise<number> {
    const slot = this.slots.get(key);
    const current = slot?.starting ? await slot.starting.catch(() => slot.current) : slot?.current;
    if (!current) return 0;
    return current.exited;
  }

  signal(key: string, signal: number): void {
    this.running(key)?.signal(signal);
  }

  /** Ends the key's container, including one still starting, and waits until it is gone. */
  async destroy(key: string): Promise<void> {
    const slot = this.slots.get(key);
    if (!slot) return;
    // One still waiting for its turn never boots; one booting now is waited for, then ended.
    slot.startCancel?.abort();
    const current = slot.starting ? await slot.starting.catch(() => undefined) : slot.current;
    if (!current) return;
    current.kill();
    await current.exited;
  }

  /** Marks a request to the key's container as open; the returned function marks it closed. */
  lease(key: string): () => void {
    const slot = this.slot(key);
    slot.openRequests++;
    slot.lastUsedAt = Date.now();
    return () => {
      slot.openRequests--;
      slot.lastUsedAt = Date.now();
    };
  }

  private reapIdle(): void {
    const now = Date.now();
    for (const [key, slot] of this.slots) {
      if (slot.openRequests > 0 || slot.starting || now - slot.lastUsedAt <= this.options.idleMs) continue;
      if (slot.current?.running) {
        this.options.log(`container ${key}: idle for ${Math.round(this.options.idleMs / 1000)} s, ending it`);
        slot.current.kill();
      }
    }
  }

  /** Ends every container (host shutdown). */
  async closeAll(): Promise<void> {
    clearInterval(this.reaper);
    await Promise.all([...this.slots.keys()].map((key) => this.destroy(key)));
  }
}
