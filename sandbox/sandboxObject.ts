/**
 * The Sandbox Durable Object: the SDK's own class, plus workspace persistence (the workspace is
 * saved to R2 before the container sleeps and put back into a fresh one; workspaceSnapshot.ts).
 * Locally (LOCAL_SANDBOX_URL set, as `npm run dev` and the tests do) it is handed a container
 * handle that reaches the local container host instead of a Cloudflare Container: see
 * localContainer.ts, the one place where the two paths differ.
 */
import { Sandbox as SdkSandbox } from "@cloudflare/sandbox";
import { readConfig } from "../config";
import { LocalContainerHandle } from "./localContainer";
import { restoreWorkspaceIfFresh, saveWorkspace } from "./workspaceSnapshot";

/** The state type the SDK's constructor declares. */
type SandboxState = ConstructorParameters<typeof SdkSandbox<Env>>[0];

export class Sandbox extends SdkSandbox<Env> {
  /** Container starts this object has seen, and the one whose workspace was last checked. */
  private containerStarts = 0;
  private checkedStart = -1;

  constructor(ctx: SandboxState, env: Env) {
    // Deployed (and under `wrangler dev` with no local host configured) workerd's own handle,
    // or its absence, reaches the SDK untouched.
    if (env.LOCAL_SANDBOX_URL && ctx.container === undefined) {
      // The containers library reads `ctx.container` in its constructor, so it must be in place
      // before super(); a Proxy around ctx is refused by the Durable Object base class.
      Object.defineProperty(ctx, "container", {
        value: new LocalContainerHandle({ url: env.LOCAL_SANDBOX_URL, token: env.LOCAL_SANDBOX_TOKEN }, containerKey(ctx.id)),
      });
    }
    super(ctx, env);
  }

  /**
   * Called by the job runner before each job: a fresh container gets the saved workspace back.
   * A container already checked since it started is not asked again; one that stopped or was
   * replaced is (the container itself knows: its marker is gone with its /tmp).
   */
  async prepareWorkspace(): Promise<"restored" | "kept"> {
    if (!readConfig(this.env).persistWorkspace) return "kept";
    if (this.checkedStart === this.containerStarts && this.ctx.container?.running) return "kept";
    const outcome = await restoreWorkspaceIfFresh(this, this.env.JOB_OUTPUT, this.sandboxIdForStorage());
    this.checkedStart = this.containerStarts;
    return outcome;
  }

  override async onStart(): Promise<void> {
    await super.onStart();
    this.containerStarts++;
  }

  /** Saves the workspace to R2 now (what happens before the container sleeps); returns its size. */
  async saveWorkspace(): Promise<number> {
    return saveWorkspace(this, this.env.JOB_OUTPUT, this.sandboxIdForStorage());
  }

  /** `sleepAfter` has passed with nothing to do: save the workspace, then let the container sleep. */
  override async onActivityExpired(): Promise<void> {
    if (readConfig(this.env).persistWorkspace && this.ctx.container?.running) {
      await this.saveWorkspace().catch((error: unknown) => console.error("could not save the workspace before sleeping", error));
    }
    await super.onActivityExpired();
  }

  private sandboxIdForStorage(): string {
    return containerKey(this.ctx.id);
  }
}

/** The sandbox's name (its ID in our API), which getSandbox() used to address this object. */
function containerKey(id: DurableObjectId): string {
  if (id.name === undefined) throw new Error("A Sandbox Durable Object must be addressed by name (getSandbox does so)");
  return id.name;
}
