/**
 * The result table: `case | walkin | floor | ratio | target | notes`, one row per figure.
 * Lower is better for every figure here (latency, bytes), so the ratio is walkin / floor and a
 * target is a ceiling on it.
 */

export interface Row {
  label: string;
  walkin: string;
  floor: string;
  ratio: number;
  /** Highest acceptable ratio, or null for a figure shown for information. */
  target: number | null;
  notes?: string;
}

const columns = ["case", "walkin", "floor", "ratio", "target", "notes"] as const;

export function ms(value: number): string {
  return value < 1 ? `${(value * 1000).toFixed(0)} µs` : `${value.toFixed(2)} ms`;
}

export function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function targetCell(row: Row): string {
  if (row.target === null) return "-";
  return `≤ ${row.target.toFixed(2)} ${row.ratio <= row.target ? "met" : "MISSED"}`;
}

export function table(rows: Row[]): string {
  const cells = rows.map((row) => [row.label, row.walkin, row.floor, row.ratio.toFixed(2), targetCell(row), row.notes ?? ""]);
  const widths = columns.map((title, c) => Math.max(title.length, ...cells.map((line) => line[c]!.length)));
  const format = (line: readonly string[]) =>
    line
      .map((cell, c) => (c === 0 || c >= 4 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join(" | ")
      .trimEnd();
  return [format(columns), widths.map((w) => "-".repeat(w)).join("-|-"), ...cells.map(format)].join("\n");
}
