/**
 * DEVELOPMENT AND TEST HARNESS: Convex Auth on the embedded backend. The real
 * `@convex-dev/auth` functions (scripts/convexAuth/auth.ts, registered as
 * `convex/auth.ts`) and tables run on convex-test; this file gives them the
 * environment a deployment would (a fresh RS256 key pair as JWT_PRIVATE_KEY and
 * JWKS, CONVEX_SITE_URL as the issuer), and checks the tokens they issue the
 * way Convex checks a token from its auth.config.ts provider: signature by
 * the JWKS, issuer, audience `convex`, expiry.
 */
import { createPublicKey, generateKeyPairSync, verify, type JsonWebKey } from "node:crypto";
import { fileURLToPath, pathToFileURL } from "node:url";
import { authTables } from "@convex-dev/auth/server";
import type { TestConvex } from "convex-test";
import { defineSchema, type UserIdentity } from "convex/server";
import { portraitTables } from "../../convex/tables.ts";
import type { Backend } from "./backend.ts";

/** The embedded deployment's site URL: Convex Auth's issuer (ADMIN_SUBJECTS' user-id rule checks it). */
const EMBEDDED_SITE_URL = "https://embedded-deployment.invalid";

/** This project's schema with Convex Auth's tables, as an app using both spreads them. */
export const convexAuthSchema = defineSchema({ ...authTables, ...portraitTables });

/** A `convexAuth: true` stack's backend, typed with Convex Auth's tables too. */
export const withAuthTables = (t: Backend) => t as unknown as TestConvex<typeof convexAuthSchema>;

const AUTH_MODULE = fileURLToPath(new URL("../convexAuth/auth.ts", import.meta.url));

/** The extra Convex module: `auth:signIn`, `auth:signOut`, `auth:store`, `auth:isAuthenticated`. */
export function convexAuthModules(): Record<string, () => Promise<unknown>> {
  const url = pathToFileURL(AUTH_MODULE).href;
  return { "convex/auth.ts": () => import(/* @vite-ignore */ url) };
}

/**
 * The environment `npx @convex-dev/auth` sets on a deployment: a new key pair
 * (the private key as PKCS#8 PEM on one line, the public one as a JWKS).
 */
export function convexAuthEnv(siteUrl = EMBEDDED_SITE_URL): Record<string, string> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString().trimEnd().replace(/\n/g, " ");
  const jwk = publicKey.export({ format: "jwk" });
  return { JWT_PRIVATE_KEY: pem, JWKS: JSON.stringify({ keys: [{ use: "sig", alg: "RS256", ...jwk }] }), CONVEX_SITE_URL: siteUrl };
}

/** A token the bridge refuses: the client should fetch a fresh one (or sign out). */
export class TokenRejected extends Error {
  constructor(reason: string) {
    super(`token rejected: ${reason}`);
    this.name = "TokenRejected";
  }
}

// OpenID claim -> UserIdentity attribute, as Convex maps them; other claims pass as they are.
const ATTRIBUTE_BY_CLAIM: Record<string, string> = {
  sub: "subject",
  iss: "issuer",
  given_name: "givenName",
  family_name: "familyName",
  preferred_username: "preferredUsername",
  profile: "profileUrl",
  picture: "pictureUrl",
  email_verified: "emailVerified",
  birthdate: "birthday",
  zoneinfo: "timezone",
  locale: "language",
  phone_number: "phoneNumber",
  phone_number_verified: "phoneNumberVerified",
  updated_at: "updatedAt",
};
const DROPPED = new Set(["aud", "iat", "exp", "nbf", "jti"]);

const decodePart = (part: string) => JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;

/**
 * Verifies a Convex Auth token with the deployment's JWKS and CONVEX_SITE_URL
 * (read from the environment at each call, like the functions do) and returns
 * the identity Convex would run functions with. Throws TokenRejected.
 */
export function identityFromToken(token: string, now = Date.now()): UserIdentity {
  const jwks = process.env.JWKS;
  const issuer = process.env.CONVEX_SITE_URL;
  if (!jwks || !issuer) throw new TokenRejected("Convex Auth is not configured on this backend (JWKS, CONVEX_SITE_URL)");
  const parts = token.split(".");
  if (parts.length !== 3) throw new TokenRejected("not a JWT");
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = decodePart(parts[0]!);
    claims = decodePart(parts[1]!);
  } catch {
    throw new TokenRejected("malformed");
  }
  if (header.alg !== "RS256") throw new TokenRejected(`unexpected algorithm ${String(header.alg)}`);
  const keys = (JSON.parse(jwks) as { keys: (JsonWebKey & { kid?: string })[] }).keys.filter(
    (key) => header.kid === undefined || key.kid === header.kid,
  );
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const signature = Buffer.from(parts[2]!, "base64url");
  if (!keys.some((key) => verify("RSA-SHA256", data, createPublicKey({ key, format: "jwk" }), signature)))
    throw new TokenRejected("bad signature");
  if (claims.iss !== issuer) throw new TokenRejected("unexpected issuer");
  const audience = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audience.includes("convex")) throw new TokenRejected("unexpected audience");
  if (typeof claims.exp !== "number" || claims.exp * 1000 <= now) throw new TokenRejected("expired");
  if (typeof claims.sub !== "string" || !claims.sub) throw new TokenRejected("no subject");
  const identity: Record<string, unknown> = {};
  for (const [claim, value] of Object.entries(claims)) {
    if (!DROPPED.has(claim)) identity[ATTRIBUTE_BY_CLAIM[claim] ?? claim] = value;
  }
  identity.tokenIdentifier = `${claims.iss}|${claims.sub}`;
  return identity as UserIdentity;
}
