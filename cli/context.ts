/** The client every command uses, configured from ARTIFACT_SANDBOX_URL and ARTIFACT_SANDBOX_KEY. */
import { ArtifactSandboxClient } from "../client";

export function clientFromEnvironment(): ArtifactSandboxClient {
  return ArtifactSandboxClient.fromEnv(process.env);
}
