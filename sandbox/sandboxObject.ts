/**
 * The Sandbox Durable Object: the SDK's own class, unchanged when deployed. Locally
 * (LOCAL_SANDBOX_URL set, as `npm run dev` and the tests do) it is handed a container handle
 * that reaches the local container host instead of a Cloudflare Container: see
 * localContainer.ts, the one place where the two paths differ.
 */
import { Sandbox as SdkSandbox } from "@cloudflare/sandbox";
import { LocalContainerHandle } from "./localContainer";

/** The state type the SDK's constructor declares. */
type SandboxState = ConstructorParameters<typeof SdkSandbox<Env>>[0];

export class Sandbox extends SdkSandbox<Env> {
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
}

/** The sandbox's name (its ID in our API), which getSandbox() used to address this object. */
function containerKey(id: DurableObjectId): string {
  if (id.name === undefined) throw new Error("A Sandbox Durable Object must be addressed by name (getSandbox does so)");
  return id.name;
}
