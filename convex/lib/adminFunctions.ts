/**
 * The function builders of convex/admin.ts: `adminQuery` and `adminMutation`
 * check the caller before the handler runs, so no admin function can forget
 * to. Anyone who is not a listed admin gets ConvexError("forbidden") before
 * anything is read, so a refusal reveals nothing about the data.
 */
import type { UserIdentity } from "convex/server";
import { ConvexError } from "convex/values";
import { customCtx, customMutation, customQuery } from "convex-helpers/server/customFunctions";
import { mutation, query, type QueryCtx } from "../_generated/server";
import { adminConfig } from "./config";

/**
 * ADMIN_SUBJECTS entries match a whole subject (Clerk's `user_…`, Auth0's
 * `auth0|…`), or the user id of a Convex Auth subject (`userId|sessionId`: the
 * session part changes at every sign-in). The user-id match applies only to
 * tokens Convex Auth issued (issuer CONVEX_SITE_URL), so an entry can never
 * match a whole provider's users through Auth0's `provider|id` subjects.
 * ADMIN_EMAILS entries match only an email the provider states is verified
 * (Convex Auth's tokens carry none).
 */
export function isAdmin(identity: UserIdentity | null): boolean {
  if (!identity) return false;
  const { subjects, emails: listedEmails, convexAuthIssuer } = adminConfig();
  if (subjects.includes(identity.subject)) return true;
  const issuedByConvexAuth = !!convexAuthIssuer && identity.issuer.replace(/\/+$/, "") === convexAuthIssuer;
  if (issuedByConvexAuth && subjects.includes(identity.subject.replace(/\|.*/s, ""))) return true;
  const emails = listedEmails.map((email) => email.toLowerCase());
  return !!identity.email && identity.emailVerified === true && emails.includes(identity.email.toLowerCase());
}

/** Throws ConvexError("forbidden") unless the caller is a listed admin. */
async function requireAdmin(ctx: Pick<QueryCtx, "auth">): Promise<UserIdentity> {
  const identity = await ctx.auth.getUserIdentity();
  if (!isAdmin(identity)) throw new ConvexError("forbidden");
  return identity!;
}

const adminCtx = customCtx(async (ctx: Pick<QueryCtx, "auth">) => ({ admin: await requireAdmin(ctx) }));

/** A public query only listed admins may call. */
export const adminQuery = customQuery(query, adminCtx);
/** A public mutation only listed admins may call. */
export const adminMutation = customMutation(mutation, adminCtx);
