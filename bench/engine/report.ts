/** Formatting of the result table: one row per case, each figure next to its floor. */
import type { Measurement } from "./measure.js";

export interface Row {
  label: string;
  walkin: Measurement;
  floor: Measurement;
  /** Extra facts for the row (retries, sum check), printed after the figures. */
  note?: string;
}

const columns = ["case", "walkin ops/s", "floor ops/s", "ratio (walkin/floor)", "p50", "p99", "notes"] as const;

function ops(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function ms(value: number | null): string {
  if (value === null) return "-";
  return value < 1 ? `${(value * 1000).toFixed(0)} µs` : `${value.toFixed(2)} ms`;
}

/** The p50/p99 columns show the engine's latency and, after the slash, the floor's. */
function latency(walkin: number | null, floor: number | null): string {
  return floor === null ? ms(walkin) : `${ms(walkin)} / ${ms(floor)}`;
}

export function table(rows: Row[]): string {
  const cells = rows.map((row) => [
    row.label,
    ops(row.walkin.opsPerSecond),
    ops(row.floor.opsPerSecond),
    (row.walkin.opsPerSecond / row.floor.opsPerSecond).toFixed(2),
    latency(row.walkin.p50, row.floor.p50),
    latency(row.walkin.p99, row.floor.p99),
    row.note ?? "",
  ]);
  const widths = columns.map((title, c) => Math.max(title.length, ...cells.map((line) => line[c]!.length)));
  const format = (line: readonly string[]) =>
    line.map((cell, c) => (c === 0 || c === line.length - 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(" | ").trimEnd();
  return [format(columns), widths.map((w) => "-".repeat(w)).join("-|-"), ...cells.map(format)].join("\n");
}
