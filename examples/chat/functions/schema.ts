import { defineSchema, defineTable, v } from "walkin/server";

export default defineSchema({
  messages: defineTable({ author: v.string(), body: v.string() }),
});
