/**
 * Convex's names for what `walkin/server` already has, so that code written for `convex/server`
 * (and libraries built on it, like convex-helpers) runs with only its import path changed.
 * Each is the Walk-in export under another name, never a second implementation.
 * docs/coming-from-convex.md lists every Convex API and what it is here.
 */
import type { DatabaseReader, DatabaseWriter } from "./database.js";
import type { Expand, GenericDataModel } from "./dataModel.js";
import { action, internalAction, internalMutation, internalQuery, mutation, query } from "./functions.js";
import { httpAction } from "./router.js";

/** `query` under Convex's name: `queryGeneric as QueryBuilder<DataModel, "public">`. */
export const queryGeneric = query;
/** `internalQuery` under Convex's name. */
export const internalQueryGeneric = internalQuery;
/** `mutation` under Convex's name. */
export const mutationGeneric = mutation;
/** `internalMutation` under Convex's name. */
export const internalMutationGeneric = internalMutation;
/** `action` under Convex's name. */
export const actionGeneric = action;
/** `internalAction` under Convex's name. */
export const internalActionGeneric = internalAction;
/** `httpAction` under Convex's name. */
export const httpActionGeneric = httpAction;

/** `ctx.db` of a query, by Convex's name: `GenericDatabaseReader<DataModel>`. */
export type GenericDatabaseReader<DM extends GenericDataModel> = DatabaseReader<DM>;
/** `ctx.db` of a mutation, by Convex's name. */
export type GenericDatabaseWriter<DM extends GenericDataModel> = DatabaseWriter<DM>;

/** Args of any function: an object of values. */
export type DefaultFunctionArgs = Record<string, unknown>;

/** A document with `_id` and `_creationTime` optional (what Convex calls it). */
export type WithOptionalSystemFields<Doc> = Expand<Omit<Doc, "_id" | "_creationTime"> & Partial<Pick<Doc, Extract<keyof Doc, "_id" | "_creationTime">>>>;

