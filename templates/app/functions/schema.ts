import { defineSchema, defineTable } from "walkin/server";
import { v } from "walkin/values";

export default defineSchema({
  messages: defineTable({ author: v.string(), body: v.string() }),
});
