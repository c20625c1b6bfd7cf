/**
 * Expands a batch's `matrix` jobs: one job per combination of the matrix's values, each value
 * given to the command as an env var, named `{name}-{values joined by -}`. A job that needs a
 * matrix job by its name needs every one of its expansions.
 */
import { type BatchEntry, JobName, MAX_JOBS_PER_BATCH, MAX_REQUEST_BODY_BYTES, type Matrix, matrixCopiesBytes } from "../schemas/job";
import { ApiError, ErrorCode } from "./errors";

/** Every combination of the matrix's values, in the order its variables and values are written. */
function combinations(matrix: Matrix): Record<string, string>[] {
  let result: Record<string, string>[] = [{}];
  for (const [key, values] of Object.entries(matrix)) {
    result = result.flatMap((partial) => values.map((value) => ({ ...partial, [key]: value })));
    if (result.length > MAX_JOBS_PER_BATCH) throw invalid(`A matrix expands to more than ${MAX_JOBS_PER_BATCH} jobs`);
  }
  return result;
}

function expandedName(name: string, values: Record<string, string>): string {
  const suffix = Object.values(values)
    .map((value) => value.replace(/[^A-Za-z0-9_.-]/g, "_"))
    .join("-");
  const expanded = `${name}-${suffix}`;
  if (!JobName.safeParse(expanded).success)
    throw invalid(`Matrix job name ${expanded} is not a valid job name (at most 64 letters, digits, '_', '.', '-')`);
  return expanded;
}

export function expandMatrix(entries: BatchEntry[]): BatchEntry[] {
  if (entries.every((entry) => entry.matrix === undefined)) return entries;
  const expansions = new Map<string, string[]>();
  const expanded = entries.flatMap((entry, index): BatchEntry[] => {
    const { matrix, ...rest } = entry;
    if (matrix === undefined) return [entry];
    const job = entry.job;
    if (job.type !== "run") throw invalid(`jobs.${index}: only run jobs take a matrix`);
    const clash = Object.keys(matrix).find((key) => Object.hasOwn(job.env, key) || job.secrets.includes(key));
    if (clash) throw invalid(`jobs.${index}.matrix: ${clash} is also in the job's env or secrets`);
    const jobs = combinations(matrix).map((values) => ({
      ...rest,
      name: entry.name === undefined ? undefined : expandedName(entry.name, values),
      job: { ...job, env: { ...job.env, ...values } },
    }));
    if (entry.name !== undefined)
      expansions.set(
        entry.name,
        jobs.flatMap((expansion) => (expansion.name ? [expansion.name] : [])),
      );
    return jobs;
  });
  if (expanded.length > MAX_JOBS_PER_BATCH)
    throw invalid(`The batch's matrix jobs expand to ${expanded.length} jobs; at most ${MAX_JOBS_PER_BATCH}`);
  // Each expansion is stored and run with its own copy of the job (its stdin too): what the
  // request limit keeps a Worker's memory from must not come back multiplied.
  const expandedBytes = matrixCopiesBytes(entries);
  if (expandedBytes > MAX_REQUEST_BODY_BYTES)
    throw new ApiError(
      413,
      ErrorCode.BODY_TOO_LARGE,
      `The batch's matrix jobs expand to ${expandedBytes} bytes of jobs (each expansion has its own copy of the job, stdin included), over ${MAX_REQUEST_BODY_BYTES}; ` +
        "write a large input to the sandbox once (a file job or PUT /v1/sandboxes/{id}/archive) and read it from the workspace",
    );
  return expanded.map((entry) => {
    const fromMatrix = entry.job.type === "run" ? entry.job.inputs.find((input) => expansions.has(input.from)) : undefined;
    if (fromMatrix)
      throw invalid(
        `inputs from matrix job ${fromMatrix.from} must name one of its expansions: ${expansions.get(fromMatrix.from)?.join(", ")}`,
      );
    return { ...entry, needs: [...new Set(entry.needs.flatMap((name) => expansions.get(name) ?? [name]))] };
  });
}

function invalid(message: string): ApiError {
  return new ApiError(400, ErrorCode.INVALID_REQUEST, message);
}
