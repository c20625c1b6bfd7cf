/**
 * One running instance of a local container: a bubblewrap namespace that runs the agent as the
 * sandbox's own host uid, inside the sandbox's cgroups. It is ready once the agent prints
 * `{"ready":true}` (it then answers on its Unix socket), and it has exited once the namespace's
 * first process has: the kernel then kills everything else in the pid namespace.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { Agent } from "node:http";
import { constants } from "node:os";
import { createInterface } from "node:readline";
import { asUser, boundToHost, type ContainerLayout, containerArgs } from "./isolation";
import { inCgroups } from "./limits";

export interface ContainerSpec {
  key: string;
  layout: ContainerLayout;
  /** Host uid the namespace runs as; undefined when the host itself is not root (it runs as the host's uid). */
  uid: number | undefined;
  /** cgroup.procs files to join before dropping privileges. */
  cgroupProcs: string[];
  /** Host path of the agent's socket. */
  socketPath: string;
  readyTimeoutMs: number;
  log: (line: string) => void;
}

export class ContainerStartError extends Error {
  override readonly name = "ContainerStartError";
}

/** How many of the agent's last stderr lines a start failure reports. */
const STDERR_LINES_KEPT = 10;

export class LocalContainer {
  /** Resolves with the exit code (128 + signal when killed) once the namespace has ended. */
  readonly exited: Promise<number>;
  /** Keep-alive connections to the agent's socket, so a proxied request skips the connect. */
  readonly agent = new Agent({ keepAlive: true, maxFreeSockets: 8 });
  exitCode: number | undefined;
  private killed = false;
  private readonly child: ChildProcess;
  private readonly stderrTail: string[] = [];

  private constructor(readonly spec: ContainerSpec) {
    // Outermost first: join the cgroups (as root), drop to the sandbox's uid, bind its life to
    // the host's, start the network (pasta, for outbound), then bubblewrap.
    const networked = spec.layout.network.wrap("bwrap", containerArgs(spec.layout));
    const bound = boundToHost(networked.command, networked.args);
    const dropped = spec.uid === undefined ? bound : asUser(spec.uid, bound.command, bound.args);
    const wrapped = inCgroups(spec.cgroupProcs, dropped.command, dropped.args);
    // Its own process group, so that a signal to the host's terminal does not reach sandboxes.
    this.child = spawn(wrapped.command, wrapped.args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.exited = new Promise((resolve) => {
      this.child.on("error", (error) => {
        this.stderrTail.push(error.message);
        this.exitCode ??= 127;
        resolve(this.exitCode);
      });
      // "close", not "exit": by then the agent's last stderr lines have been read, for the start error.
      this.child.on("close", (code, signal) => {
        this.exitCode = code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1);
        this.agent.destroy();
        resolve(this.exitCode);
      });
    });
    if (this.child.stderr) {
      createInterface({ input: this.child.stderr }).on("line", (line) => {
        this.stderrTail.push(line);
        if (this.stderrTail.length > STDERR_LINES_KEPT) this.stderrTail.shift();
        spec.log(`container ${spec.key}: ${line}`);
      });
    }
  }

  /** Starts the namespace and resolves once the agent listens; kills it and throws otherwise. */
  static async start(spec: ContainerSpec): Promise<LocalContainer> {
    const container = new LocalContainer(spec);
    try {
      await container.ready();
      return container;
    } catch (error) {
      container.kill();
      await container.exited;
      throw error;
    }
  }

  /** False from the moment it is killed, so that a start right after a destroy makes a new instance. */
  get running(): boolean {
    return this.exitCode === undefined && !this.killed;
  }

  /** Resolves when the agent prints its ready line; later lines are its logging and go to the log. */
  private ready(): Promise<void> {
    const stdout = this.child.stdout;
    if (!stdout) return Promise.reject(new ContainerStartError("the agent has no stdout"));
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (problem?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (problem === undefined) return resolve();
        const tail = this.stderrTail.join("\n");
        reject(new ContainerStartError(`${problem}${tail ? `:\n${tail}` : ""}`));
      };
      const timer = setTimeout(
        () => settle(`the agent did not report ready within ${this.spec.readyTimeoutMs} ms`),
        this.spec.readyTimeoutMs,
      );
      createInterface({ input: stdout }).on("line", (line) => {
        if (!settled && isReadyLine(line)) settle();
        else this.spec.log(`container ${this.spec.key}: ${line}`);
      });
      void this.exited.then((code) => settle(`the container exited (code ${code}) before its agent was ready`));
    });
  }

  /**
   * Sends `signal` to every process in the namespace. SIGKILL and SIGTERM end the container:
   * the namespace's init dies, and the kernel kills the rest of its pid namespace with it.
   */
  signal(signal: number): void {
    if (signal === constants.signals.SIGKILL || signal === constants.signals.SIGTERM) {
      this.kill();
      return;
    }
    const pid = this.child.pid;
    if (pid === undefined || !this.running) return;
    // Not to the host's guard and what it runs (pasta, or bubblewrap without a network): they
    // stand between the host and the sandbox, and pasta would die of most signals.
    for (const descendant of childrenOf(pid).flatMap(descendantsOf)) trySignal(descendant, signal);
  }

  /** Ends the container at once (idempotent). */
  kill(): void {
    const pid = this.child.pid;
    if (pid !== undefined && this.exitCode === undefined) trySignal(-pid, constants.signals.SIGKILL);
    this.killed = true;
  }
}

function isReadyLine(line: string): boolean {
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === "object" && parsed !== null && "ready" in parsed && parsed.ready === true;
  } catch {
    return false;
  }
}

function trySignal(pid: number, signal: number): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Direct children of `pid`, whichever of its threads forked them. */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").split(" ").filter(Boolean).map(Number),
    );
  } catch {
    return []; // Exited meanwhile.
  }
}

/** Every process below `pid`, from the kernel's child lists (the namespace's processes, for a container). */
function descendantsOf(pid: number): number[] {
  const found: number[] = [];
  const pending = [pid];
  while (pending.length > 0) {
    const next = pending.pop();
    if (next === undefined) break;
    for (const child of childrenOf(next)) {
      found.push(child);
      pending.push(child);
    }
  }
  return found;
}
