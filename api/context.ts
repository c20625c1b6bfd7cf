/** The Hono environment shared by every router: bindings plus per-request services. */
import type { JobService } from "./jobService";
import type { JobPresenter } from "./present";

export interface ApiEnv {
  Bindings: Env;
  Variables: {
    /** The tenant the request acts for: its API key's, or a signed URL's (api/authenticate.ts). */
    tenant: string;
    /** That tenant's jobs. */
    jobs: JobService;
    /** Job records as answers, with download URLs signed for the default lifetime. */
    presenter: JobPresenter;
  };
}
