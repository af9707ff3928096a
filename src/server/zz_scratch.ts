import { v } from "../values/index.js";
import type { DatabaseReader, QueryInitializer, OrderedQuery, FilterBuilder, IndexRangeBuilder, FieldValues } from "./database.js";
import type { AnyDataModel } from "./dataModel.js";
import { defineSchema, defineTable, type DataModelFromSchemaDefinition } from "./schema.js";
const schema = defineSchema({
  users: defineTable({ name: v.string() }).index("by_name", ["name"]),
});
type DM = DataModelFromSchemaDefinition<typeof schema>;
type U = DM["users"]; type A = AnyDataModel["x"];
declare const r1: DatabaseReader<DM>;
export const r2: DatabaseReader<AnyDataModel> = r1;
declare const q1: QueryInitializer<U>;
export const q2: QueryInitializer<A> = q1;
declare const o1: OrderedQuery<U>;
export const o2: OrderedQuery<A> = o1;
declare const f1: FilterBuilder<U>;
export const f2: FilterBuilder<A> = f1;
declare const i1: IndexRangeBuilder<FieldValues<U>, ["name", "_creationTime"]>;
export const i2: IndexRangeBuilder<FieldValues<A>, string[]> = i1;
