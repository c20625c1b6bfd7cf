/** The Hono environment shared by every router: bindings plus per-request services. */
import type { JobService } from "./jobService";

export interface ApiEnv {
  Bindings: Env;
  Variables: { jobs: JobService };
}
