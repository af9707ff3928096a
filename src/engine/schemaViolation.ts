/**
 * The message of a write the schema refuses. A patch can fail for a field it does not set: the
 * stored document was written under an earlier schema (a field made required, a type narrowed)
 * and the schema now in force refuses it as it is. The message then says so, names the document
 * and the field, and what to do, rather than leave the patch looking wrong.
 */
import { validateResult, type ValidateResult } from "../values/index.js";
import { formatPath } from "../values/path.js";
import type { Value } from "../values/index.js";
import type { TableInfo } from "./catalog.js";
import type { Doc } from "./documents.js";

type Failure = Extract<ValidateResult, { ok: false }>;

/**
 * `update`: the stored document a patch or replace wrote over, and the fields a patch set
 * (`null` for a replace, which sets them all).
 */
export function schemaViolationMessage(
  table: TableInfo,
  failure: Failure,
  update: { doc: Doc; changed: string[] | null } | undefined,
  isIdOfTable: (tableName: string, id: string) => boolean,
): string {
  const which = update ? `Document "${update.doc._id}"` : "Document";
  const plain = `${which} does not match the schema of table "${table.name}": ${failure.message}`;
  if (!update?.changed || update.changed.some((key) => underField(failure.path, table.name, key))) return plain;
  // The patch did not write where it fails: it is the stored document's fault if the schema
  // refuses that one the same way.
  const { _id, _creationTime, ...stored } = update.doc;
  const before = validateResult(table.validator!, stored as Record<string, Value>, { path: table.name, isIdOfTable, trusted: true });
  if (before.ok || before.message !== failure.message) return plain;
  return `${plain}. The document was stored before the schema changed, and this patch does not set that field. ` +
    `Set it in the patch (a migration of the document), migrate the table's documents to the new schema, ` +
    `make the field accept the stored value (v.optional(...) for a field old documents lack, or a v.union of the ` +
    `old and new types), or turn validation off with defineSchema(..., { schemaValidation: false }).`;
}

/** Whether `path` (as validateResult formats it from `root`) lies under the top-level field `key`. */
function underField(path: string, root: string, key: string): boolean {
  const prefix = formatPath(root, [key]);
  return path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
}
