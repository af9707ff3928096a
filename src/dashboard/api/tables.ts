/**
 * The app's tables as the Data screen lists them: names, counts, indexes, validators, hidden
 * fields; and which table an ID belongs to. System tables are left out (they belong to the
 * Scheduler screen).
 */
import type { Engine } from "../../engine/engine.js";
import { isPlainIndex, type TableInfo } from "../../engine/catalog.js";
import { tableNumberOfId } from "../../engine/ids.js";
import { notFound } from "./httpJson.js";
import { secretFields, touchesSecret } from "./secrets.js";
import { validatorData } from "./validatorData.js";

/** Counting stops here: a bigger table shows "100,000+". */
export const COUNT_LIMIT = 100_000;
const COUNT_BATCH = 1_000;

export interface TableSummary {
  name: string;
  count: number;
  /** The count stopped at COUNT_LIMIT. */
  countCapped: boolean;
  indexes: Array<{ name: string; fields: string[] }>;
  /** The document validator as data (`{ kind: "object", fields }`), or null without a schema. */
  validator: unknown;
  hiddenFields: string[];
}

/** App tables (system tables excluded), by name. */
export function appTables(engine: Engine): TableInfo[] {
  return engine.catalog
    .tables()
    .filter((table) => !table.system && !table.name.startsWith("_"))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function appTable(engine: Engine, name: unknown): TableInfo {
  const table = typeof name === "string" ? appTables(engine).find((t) => t.name === name) : undefined;
  if (!table) throw notFound(`There is no table "${String(name)}". Tables: ${appTables(engine).map((t) => t.name).join(", ") || "none yet"}.`);
  return table;
}

/** Declared fields of an index (without the `_creationTime`, `_id` every index ends with). */
export function declaredFields(fields: string[], name: string): string[] {
  return name === "by_id" || name === "by_creation_time" ? fields : fields.slice(0, -2);
}

/**
 * Counts a table's documents at the latest snapshot, straight from storage in batches (no
 * transaction: a count may read more than one transaction is allowed to).
 */
export async function countDocuments(engine: Engine, table: TableInfo): Promise<{ count: number; capped: boolean }> {
  const index = table.indexes.get("by_creation_time")!;
  const readTs = engine.latestTimestamp;
  const release = engine.pinSnapshot(readTs);
  try {
    let count = 0;
    let lower: { key: Uint8Array; inclusive: boolean } | undefined;
    for (;;) {
      const entries = await engine.storage.scan({ indexId: index.id, range: lower ? { lower } : {}, order: "asc", readTs, limit: COUNT_BATCH });
      count += entries.length;
      if (entries.length < COUNT_BATCH || count >= COUNT_LIMIT) {
        // Shown once the snapshot it counted is durable (under FULL, a commit is synced after it lands).
        await engine.durableThrough(readTs);
        return { count, capped: entries.length === COUNT_BATCH };
      }
      lower = { key: entries[entries.length - 1]!.key, inclusive: false };
    }
  } finally {
    release();
  }
}

/** A written table is counted again at most this often (a busy table would otherwise be rescanned on every reload). */
const RECOUNT_MS = 2_000;

/**
 * Table counts, cached per table. A commit marks its tables stale. A stale count older than
 * RECOUNT_MS is redone when asked for; a younger one is answered as it is, and redone once
 * RECOUNT_MS have passed, after which `recounted` tells the pages to ask again. So a table the
 * app writes a hundred times a second costs one scan every two seconds while a page watches,
 * and the count shown is exact at most RECOUNT_MS after the last write.
 */
export class TableCounts {
  private readonly cache = new Map<string, { count: number; capped: boolean; at: number; stale: boolean }>();
  private readonly counting = new Map<string, Promise<{ count: number; capped: boolean }>>();
  private readonly deferred = new Map<string, NodeJS.Timeout>();
  /** Commits seen per table: a count that saw fewer than there are now may be behind. */
  private readonly writes = new Map<string, number>();
  private engine: Engine | null = null;

  /** `recountMs` and `now` are for tests. */
  constructor(
    private readonly recounted: (table: string) => void = () => {},
    private readonly options: { recountMs?: number; now?: () => number } = {},
  ) {}

  private get recountMs(): number {
    return this.options.recountMs ?? RECOUNT_MS;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  forget(tables: Iterable<string>): void {
    for (const table of tables) {
      this.writes.set(table, (this.writes.get(table) ?? 0) + 1);
      const entry = this.cache.get(table);
      if (entry) entry.stale = true;
    }
  }

  /**
   * A write can land while a count runs, after the count's snapshot:
   *  1. the count starts and takes its snapshot;
   *  2. a commit writes the table: `forget` marks the entry stale, and the pages, told of the
   *     commit, ask and join this same count;
   *  3. the count ends without that write.
   * Stored as fresh, it would be shown one short until the table's next write. So a count is
   * stored stale when a commit came since it began, and `recounted` tells the pages to ask
   * again: they get it as it is, and the exact count once RECOUNT_MS have passed (`count`).
   * Nothing is counted unless a page asks, so a busy table nobody watches costs nothing.
   */
  private recount(engine: Engine, table: TableInfo): Promise<{ count: number; capped: boolean }> {
    let running = this.counting.get(table.name);
    if (!running) {
      const writesBefore = this.writes.get(table.name) ?? 0;
      running = countDocuments(engine, table)
        .then((counted) => {
          if (this.engine !== engine) return counted;
          const behind = (this.writes.get(table.name) ?? 0) !== writesBefore;
          this.cache.set(table.name, { ...counted, at: this.now(), stale: behind });
          if (behind) this.recounted(table.name);
          return counted;
        })
        .finally(() => this.counting.delete(table.name));
      this.counting.set(table.name, running);
    }
    return running;
  }

  /** Counts `table` again in `delayMs` (once, however often asked), then tells the pages. */
  private defer(engine: Engine, table: TableInfo, delayMs: number): void {
    if (this.deferred.has(table.name)) return;
    const timer = setTimeout(() => {
      this.deferred.delete(table.name);
      if (this.engine !== engine) return;
      void this.recount(engine, table).then(() => this.recounted(table.name), () => {});
    }, delayMs);
    timer.unref?.();
    this.deferred.set(table.name, timer);
  }

  private async count(engine: Engine, table: TableInfo): Promise<{ count: number; capped: boolean }> {
    const cached = this.cache.get(table.name);
    if (cached && !cached.stale) return cached;
    const age = cached ? this.now() - cached.at : Infinity;
    if (!cached || age >= this.recountMs) return this.recount(engine, table);
    this.defer(engine, table, this.recountMs - age);
    return cached;
  }

  /** Stops deferred recounts. */
  close(): void {
    for (const timer of this.deferred.values()) clearTimeout(timer);
    this.deferred.clear();
  }

  async summaries(engine: Engine): Promise<TableSummary[]> {
    if (engine !== this.engine) {
      this.cache.clear();
      this.engine = engine;
    }
    const summaries: TableSummary[] = [];
    for (const table of appTables(engine)) {
      const counted = await this.count(engine, table);
      const hidden = secretFields(table);
      summaries.push({
        name: table.name,
        count: counted.count,
        countCapped: counted.capped,
        // An index on a hidden field is not offered: documents/list refuses it (documents.ts).
        indexes: [...table.indexes.values()]
          .filter(isPlainIndex)
          .map((index) => ({ name: index.name, fields: declaredFields(index.fields, index.name) }))
          .filter((index) => !index.fields.some((field) => touchesSecret(field, hidden))),
        validator: validatorData(table.validator),
        hiddenFields: hidden,
      });
    }
    return summaries;
  }
}

/** The app table an ID belongs to. */
export function tableOfId(engine: Engine, id: string): TableInfo {
  const number = tableNumberOfId(id);
  const table = number === null ? undefined : engine.catalog.tableOfNumber(number);
  if (!table || table.system) throw notFound(`"${id}" is not the ID of a document in an app table.`);
  return table;
}

