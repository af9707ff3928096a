import { v } from "../values/index.js";
import type { DatabaseReader, DatabaseWriter, QueryInitializer, IndexRangeBuilder, UpperBoundBuilder, OrderedQuery, FilterBuilder } from "./database.js";
import type { AnyDataModel } from "./dataModel.js";
import { defineSchema, defineTable, type DataModelFromSchemaDefinition } from "./schema.js";
const schema = defineSchema({
  users: defineTable({ name: v.string() }).index("by_name", ["name"]),
});
type DM = DataModelFromSchemaDefinition<typeof schema>;
type U = DM["users"]; type A = AnyDataModel["x"];
type UD = U["document"]; type AD = A["document"];
type Ass<X, Y> = [X] extends [Y] ? true : false;
export type R = {
  reader_dm_to_any: Ass<DatabaseReader<DM>, DatabaseReader<AnyDataModel>>;
  reader_any_to_dm: Ass<DatabaseReader<AnyDataModel>, DatabaseReader<DM>>;
  writer_dm_to_any: Ass<DatabaseWriter<DM>, DatabaseWriter<AnyDataModel>>;
  writer_any_to_dm: Ass<DatabaseWriter<AnyDataModel>, DatabaseWriter<DM>>;
  qi_u_to_a: Ass<QueryInitializer<U>, QueryInitializer<A>>;
  qi_a_to_u: Ass<QueryInitializer<A>, QueryInitializer<U>>;
  oq_u_to_a: Ass<OrderedQuery<U>, OrderedQuery<A>>;
  oq_a_to_u: Ass<OrderedQuery<A>, OrderedQuery<U>>;
  fb_u_to_a: Ass<FilterBuilder<U>, FilterBuilder<A>>;
  fb_a_to_u: Ass<FilterBuilder<A>, FilterBuilder<U>>;
  irb_u_to_a: Ass<IndexRangeBuilder<UD, ["name"]>, IndexRangeBuilder<AD, string[]>>;
  irb_a_to_u: Ass<IndexRangeBuilder<AD, string[]>, IndexRangeBuilder<UD, ["name"]>>;
  ub_u_to_a: Ass<UpperBoundBuilder<UD, "name">, UpperBoundBuilder<AD, string>>;
  ub_a_to_u: Ass<UpperBoundBuilder<AD, string>, UpperBoundBuilder<UD, "name">>;
  ud_ad: Ass<UD, AD>;
};
const r: R = null!;
const s: { [K in keyof R as R[K] extends true ? K : never]: 1 } = { zz: 1 }; const s2: { [K in keyof R as R[K] extends false ? K : never]: 1 } = { zz: 1 };
