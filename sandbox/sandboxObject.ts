/**
 * The Sandbox Durable Object: the SDK's own class, plus workspace persistence (the workspace is
 * saved to R2 before the container sleeps and put back into a fresh one; workspaceSnapshot.ts).
 * A save that fails keeps the container awake (the next idle period tries again) and is
 * remembered: should the container stop anyway, the next job is told its workspace was lost
 * rather than silently given the older save.
 * Locally (LOCAL_SANDBOX_URL set, as `npm run dev` and the tests do) it is handed a container
 * handle that reaches the local container host instead of a Cloudflare Container: see
 * localContainer.ts, the one place where the two paths differ.
 */
import { Sandbox as SdkSandbox } from "@cloudflare/sandbox";
import { readConfig } from "../config";
import { LocalContainerHandle } from "./localContainer";
import { restoreWorkspaceIfFresh, saveWorkspace, type WorkspaceLost } from "./workspaceSnapshot";

/** The state type the SDK's constructor declares. */
type SandboxState = ConstructorParameters<typeof SdkSandbox<Env>>[0];

export class Sandbox extends SdkSandbox<Env> {
  /** Container starts this object has seen, and the one whose workspace was last checked. */
  private containerStarts = 0;
  private checkedStart = -1;
  /** Which start of the container the last job was prepared on. */
  private preparedStart = -1;
  /** A save of the workspace under way (before the container sleeps), and when the last job began. */
  private saving: Promise<unknown> = Promise.resolve();
  private lastJobAt = 0;

  constructor(ctx: SandboxState, env: Env) {
    // Deployed (and under `wrangler dev` with no local host configured) workerd's own handle,
    // or its absence, reaches the SDK untouched.
    if (env.LOCAL_SANDBOX_URL && ctx.container === undefined) {
      // The containers library reads `ctx.container` in its constructor, so it must be in place
      // before super(); a Proxy around ctx is refused by the Durable Object base class.
      Object.defineProperty(ctx, "container", {
        value: new LocalContainerHandle({ url: env.LOCAL_SANDBOX_URL, token: env.LOCAL_SANDBOX_TOKEN }, () => sandboxName(ctx)),
      });
    }
    super(ctx, env);
    const name = ctx.id.name;
    // An object woken by an alarm may not be told its name: remember it from a call that was.
    if (name !== undefined) {
      void ctx.blockConcurrencyWhile(async () => {
        if ((await ctx.storage.get(NAME_KEY)) !== name) await ctx.storage.put(NAME_KEY, name);
      });
    }
  }

  /**
   * Called by the job runner before each job: a fresh container gets the saved workspace back.
   * A container already checked since it started is not asked again; one that stopped or was
   * replaced is (the container itself knows: its marker is gone with its /tmp).
   */
  async prepareWorkspace(): Promise<"restored" | "kept" | "empty" | WorkspaceLost> {
    this.lastJobAt = Date.now();
    // Started here, where a cold start may take its time: the job's own round trips are then
    // held to the short deadline that tells a stopped container from a slow start.
    await this.startContainerOnce();
    this.preparedStart = this.containerStarts;
    if (!readConfig(this.env).persistWorkspace) return "kept";
    // A job waits for a save under way, so that it neither changes files mid-archive nor has its
    // container stopped under it.
    await this.saving;
    if (this.checkedStart === this.containerStarts && this.ctx.container?.running) return "kept";
    const outcome = await restoreWorkspaceIfFresh(this, this.env.JOB_OUTPUT, await sandboxName(this.ctx));
    this.checkedStart = this.containerStarts;
    const unsaved = await this.ctx.storage.get(UNSAVED_KEY);
    if (outcome === "kept" || typeof unsaved !== "string") return outcome;
    // Told once: the job that finds it fails saying so; later jobs use the workspace as it now is.
    await this.ctx.storage.delete(UNSAVED_KEY);
    return { lost: outcome === "restored" ? "restored an older save" : "nothing saved", failedSaveAt: unsaved };
  }

  /**
   * Starts the container if it is not running, in one go: past the account's container cap the
   * platform's refusal comes back from this one start. The SDK's own calls would retry it for
   * over two minutes (their transport's retry budget is at least 120 s whatever
   * containerTimeouts say); the job runner retries it itself, the job waiting queued meanwhile.
   */
  private async startContainerOnce(): Promise<void> {
    if (this.ctx.container?.running) return;
    await this.startAndWaitForPorts({
      ports: this.defaultPort,
      cancellationOptions: { instanceGetTimeoutMS: INSTANCE_GET_TIMEOUT_MS, portReadyTimeoutMS: PORT_READY_TIMEOUT_MS },
    });
  }

  /**
   * Whether the container started again since the last job was prepared: it was replaced while
   * that job ran (its server was killed, or the container died).
   */
  async containerStartedSincePrepared(): Promise<boolean> {
    return this.containerStarts !== this.preparedStart;
  }

  /**
   * Whether a container runs for this sandbox now (without starting one), so that ending a dead
   * runner's commands does not start a container, outside its tenant's slots, only to find none.
   */
  async hasRunningContainer(): Promise<boolean> {
    const container = this.ctx.container;
    if (container instanceof LocalContainerHandle) return container.runsOnHost();
    return container?.running === true;
  }

  /**
   * Ends the container now, its workspace saved first as before it sleeps (deployed, its disk
   * goes with it): what the tenant's next job asks of an idle container whose slot it takes.
   */
  async stopContainer(): Promise<void> {
    // Asked of the host locally: a handle made after this object restarted reads "not running"
    // while the host's container lives on, and a no-op here left it holding the tenant's place.
    if (!(await this.hasRunningContainer())) return;
    if (readConfig(this.env).persistWorkspace) await this.saveWorkspace();
    await this.destroy();
  }

  override async onStart(): Promise<void> {
    await super.onStart();
    this.containerStarts++;
  }

  /** Saves the workspace to R2 now (what happens before the container sleeps); returns its size. */
  async saveWorkspace(): Promise<number> {
    const saved = this.saving.then(async () => {
      const bytes = await saveWorkspace(this, this.env.JOB_OUTPUT, await sandboxName(this.ctx));
      await this.ctx.storage.delete(UNSAVED_KEY);
      return bytes;
    });
    this.saving = saved.catch(() => undefined);
    return saved;
  }

  /** `sleepAfter` has passed with nothing to do: save the workspace, then let the container sleep. */
  override async onActivityExpired(): Promise<void> {
    if (readConfig(this.env).persistWorkspace && this.ctx.container?.running) {
      const savingFrom = Date.now();
      const failed = await this.saveWorkspace().then(
        () => false,
        (error: unknown) => {
          console.error("could not save the workspace before sleeping; the container stays up and tries again", error);
          return true;
        },
      );
      if (failed) {
        if ((await this.ctx.storage.get(UNSAVED_KEY)) === undefined)
          await this.ctx.storage.put(UNSAVED_KEY, new Date(savingFrom).toISOString());
        this.renewActivityTimeout();
        return;
      }
      if (this.lastJobAt >= savingFrom) {
        // A job came while the workspace was saved: the container is busy again, not idle.
        this.renewActivityTimeout();
        return;
      }
    }
    await super.onActivityExpired();
  }
}

const NAME_KEY = "artifact-sandbox:name";
/** Set (to the failed save's time) while the saved workspace is older than the container's. */
const UNSAVED_KEY = "artifact-sandbox:workspace-unsaved";
/** The SDK's own start budgets (its containerTimeouts defaults, which it keeps private). */
const INSTANCE_GET_TIMEOUT_MS = 30_000;
const PORT_READY_TIMEOUT_MS = 90_000;

/** The sandbox's name (its ID in our API), by which getSandbox() addressed this object. */
async function sandboxName(ctx: SandboxState): Promise<string> {
  const name = ctx.id.name ?? (await ctx.storage.get(NAME_KEY));
  if (typeof name !== "string") throw new Error("This Sandbox object was never addressed by name (getSandbox does so)");
  return name;
}
