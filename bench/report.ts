/** The benchmark's table: each figure beside its floor measured in the same run, and their ratio. */

export interface Figure {
  value: number;
  unit: string;
}

export interface Row {
  measure: string;
  value: Figure;
  /** The physical floor measured in the same run, or none (memory). */
  floor?: { what: string; value: Figure };
  /** Earlier figures or the target, for comparison. */
  reference?: string;
}

function format({ value, unit }: Figure): string {
  if (!Number.isFinite(value)) return "n/a";
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

/** value / floor: for times how many floors a figure costs, for rates what share of the floor's rate it reaches. */
function ratio(row: Row): string {
  if (!row.floor || row.floor.value.value === 0 || !Number.isFinite(row.value.value)) return "";
  return `${(row.value.value / row.floor.value.value).toFixed(2)}x`;
}

export function renderTable(rows: Row[]): string {
  const header = ["measure", "value", "floor (same run)", "floor value", "ratio", "previous / target"];
  const cells = rows.map((row) => [
    row.measure,
    format(row.value),
    row.floor?.what ?? "",
    row.floor ? format(row.floor.value) : "",
    ratio(row),
    row.reference ?? "",
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((line) => (line[column] ?? "").length)));
  const line = (values: string[]) => `| ${values.map((value, column) => value.padEnd(widths[column] ?? 0)).join(" | ")} |`;
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...cells.map(line)].join("\n");
}

export const ms = (value: number): Figure => ({ value, unit: "ms" });
export const seconds = (value: number): Figure => ({ value, unit: "s" });
export const rate = (value: number, unit: string): Figure => ({ value, unit });
export const mebibytes = (value: number): Figure => ({ value, unit: "MiB" });
