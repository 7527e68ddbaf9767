/**
 * Sign-in with Convex Auth, end to end: the real `@convex-dev/auth` functions
 * (Password provider) and tables run on the embedded backend
 * (`startDemoStack({ convexAuth: true })`), the console is built with
 * VITE_AUTH=convex-auth, and the bridge runs each call as the holder of the
 * token Convex Auth issued, checked against the stack's JWKS. Chromium signs
 * up and in through the form; admins are listed by user id (ADMIN_SUBJECTS).
 */
import { createPrivateKey, createSign, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdirSync } from "node:fs";
import { ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, expect, inject, test } from "vitest";
import { internal } from "../../convex/_generated/api";
import { ADMIN_IDENTITY } from "../../scripts/lib/backend";
import { serveAdmin, type AdminServer } from "../../scripts/lib/bridge";
import { connectChromium } from "../../scripts/lib/browser";
import { withAuthTables } from "../../scripts/lib/convexAuth";
import { startDemoStack, type DemoStack } from "../../scripts/lib/stack";
import { caseFile, settle } from "../harness";

const SHOTS = "out/screenshots";
const WARDEN = { email: "warden@asylum.test", password: "lantern-in-ward-c" };
const ORDERLY = { email: "orderly@asylum.test", password: "night-shift-rounds" };
const MATRON = { email: "matron@asylum.test", password: "keys-on-a-ring" };
const NURSE = { email: "nurse@asylum.test", password: "a-candle-in-c-wing" };
const HEAD_NURSE = { email: "head-nurse@asylum.test", password: "the-register-of-c-wing" };
const TITLE = "The Quiet Ward";

let stack: DemoStack;
let server: AdminServer;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // The warden's email is listed, yet admits nobody: a Convex Auth token carries no email.
  stack = await startDemoStack({ convexAuth: true, env: { ADMIN_EMAILS: WARDEN.email, ADMIN_SUBJECTS: undefined }, backendLog: () => {} });
  await stack.t.mutation(internal.stories.insertStory, caseFile({ title: TITLE }));
  await settle(stack.t);
  server = await serveAdmin(stack, { dist: inject("adminAuthDist") });
  browser = await connectChromium(inject("chromiumEndpoint"));
}, 120_000);

afterEach(() => {
  delete process.env.ADMIN_SUBJECTS;
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await stack?.close();
});

async function openConsole({ url = `${server.url}/#/`, viewport = { width: 1280, height: 900 } } = {}) {
  // A context of its own: its own localStorage, where Convex Auth keeps the tokens.
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(url);
  return { page, errors, close: () => context.close() };
}

async function submit(page: Page, { email, password }: { email: string; password: string }, button: "Sign in" | "Create account") {
  const submitButton = page.getByRole("button", { name: button, exact: true });
  await expect.poll(() => submitButton.isEnabled()).toBe(true); // the previous attempt has ended
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await submitButton.click();
}

type Tokens = { tokens: { token: string; refreshToken: string } };
const signInRef = makeFunctionReference<"action", Record<string, unknown>, Tokens>("auth:signIn");

/** Creates an account through Convex's HTTP API (ConvexHttpClient), as another app of the deployment would; returns its user id. */
async function createAccount(who: { email: string; password: string }): Promise<string> {
  const { tokens } = await new ConvexHttpClient(server.url).action(signInRef, { provider: "password", params: { ...who, flow: "signUp" } });
  return subjectOf(tokens.token).split("|")[0]!;
}

const stored = (page: Page, prefix: string) =>
  page.evaluate(
    (prefix) =>
      Object.keys(localStorage)
        .filter((key) => key.startsWith(prefix))
        .map((key) => localStorage.getItem(key)),
    prefix,
  );
const storedTokens = (page: Page) => stored(page, "__convexAuthJWT");
const subjectOf = (token: string) => (JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { sub: string }).sub;

const userByEmail = (email: string) =>
  withAuthTables(stack.t).run(async (ctx) => {
    const user = await ctx.db
      .query("users")
      .withIndex("email", (q) => q.eq("email", email))
      .unique();
    const sessions = user
      ? await ctx.db
          .query("authSessions")
          .withIndex("userId", (q) => q.eq("userId", user._id))
          .collect()
      : [];
    return { user, sessions: sessions.length };
  });

async function expectForbidden(page: Page) {
  await page.getByRole("heading", { name: "Restricted ward" }).waitFor();
  const text = (await page.locator("body").textContent()) ?? "";
  expect(text).toContain("your account is not on the staff list");
  expect(text).not.toContain(TITLE);
  expect(await page.locator(".counts, table").count()).toBe(0);
}

test("an operator signs up, is listed by user id, sees the console, signs out and signs back in", async () => {
  const { page, errors, close } = await openConsole();

  // Nobody signed in: the form, no data, no demo identities.
  await page.getByRole("heading", { name: "Staff sign-in" }).waitFor();
  expect(await page.locator(".counts, table, .bridge-banner").count()).toBe(0);
  await page.screenshot({ path: `${SHOTS}/signin.png`, fullPage: true });

  // A new account is signed in at once, and is no admin: not listed by subject, and its email does not count.
  await page.getByRole("button", { name: "Create an account" }).click();
  await submit(page, WARDEN, "Create account");
  await expectForbidden(page);
  const { user, sessions } = await userByEmail(WARDEN.email);
  expect(user).not.toBeNull();
  expect(sessions).toBe(1);
  expect(await page.getByTestId("user-id").textContent()).toBe(user!._id);

  // Listed by the user id the page shows, the same browser sees the console after a reload: the token outlived it.
  process.env.ADMIN_SUBJECTS = user!._id;
  await page.reload();
  await page.getByRole("link", { name: TITLE }).waitFor();
  expect(await page.getByTestId("count-stored").locator(".count-n").textContent()).toBe("1");
  const firstToken = (await storedTokens(page))[0]!;
  expect(subjectOf(firstToken)).toMatch(new RegExp(`^${user!._id}\\|`));

  // Sign out: back to the form, the token gone from the browser and its session from the backend.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Staff sign-in" }).waitFor();
  expect(await page.locator(".counts, table").count()).toBe(0);
  expect(await storedTokens(page)).toEqual([]);
  expect((await userByEmail(WARDEN.email)).sessions).toBe(0);

  // A wrong password is refused in words that do not say which field was wrong.
  await submit(page, { ...WARDEN, password: "not-the-password" }, "Sign in");
  await expect.poll(() => page.getByRole("status").first().textContent()).toBe("Wrong email or password.");
  await submit(page, { email: "nobody@asylum.test", password: WARDEN.password }, "Sign in");
  await expect.poll(() => page.getByRole("status").first().textContent()).toBe("Wrong email or password.");
  expect(await page.locator(".counts").count()).toBe(0);

  // Signed in again: a new session, the same user id, still an admin.
  await submit(page, WARDEN, "Sign in");
  await page.getByRole("link", { name: TITLE }).waitFor();
  const secondToken = (await storedTokens(page))[0]!;
  expect(subjectOf(secondToken)).not.toBe(subjectOf(firstToken));
  expect(subjectOf(secondToken).split("|")[0]).toBe(user!._id);
  await page.screenshot({ path: `${SHOTS}/signed-in.png`, fullPage: true });

  expect(errors).toEqual([]);
  await close();
}, 90_000);

test("a signed-in account that is not listed sees the forbidden page and no data, and can sign out", async () => {
  // Someone else is the admin.
  process.env.ADMIN_SUBJECTS = await createAccount(HEAD_NURSE);
  // At phone width: nothing wider than the screen.
  const { page, errors, close } = await openConsole({ viewport: { width: 390, height: 844 } });
  const scrollWidth = () => page.evaluate(() => document.documentElement.scrollWidth);
  await page.getByRole("button", { name: "Create an account" }).click();
  expect(await scrollWidth()).toBeLessThanOrEqual(390);
  await submit(page, ORDERLY, "Create account");
  await expectForbidden(page);
  expect(await scrollWidth()).toBeLessThanOrEqual(390);
  const { user } = await userByEmail(ORDERLY.email);
  expect(await page.getByTestId("user-id").textContent()).toBe(user!._id);
  await page.screenshot({ path: `${SHOTS}/signin-forbidden.png`, fullPage: true });

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Staff sign-in" }).waitFor();
  expect(await storedTokens(page)).toEqual([]);
  expect(errors).toEqual([]);
  await close();
}, 60_000);

test("an expired token is refreshed through Convex's HTTP API: the console stays signed in", async () => {
  process.env.ADMIN_SUBJECTS = await createAccount(MATRON);
  const { page, errors, close } = await openConsole();
  await submit(page, MATRON, "Sign in");
  await page.getByRole("link", { name: TITLE }).waitFor();
  const token = (await storedTokens(page))[0]!;
  const refreshToken = (await stored(page, "__convexAuthRefreshToken"))[0]!;

  // The same session's token, an hour old: the bridge refuses it, the client refreshes it with the stored refresh token.
  const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as Record<string, number>;
  const expired = forge(deploymentKey(), { ...claims, iat: claims.iat! - 3600, exp: claims.exp! - 3600 });
  await page.evaluate((jwt) => {
    for (const key of Object.keys(localStorage)) if (key.startsWith("__convexAuthJWT")) localStorage.setItem(key, jwt);
  }, expired);
  await page.reload();
  await page.getByRole("link", { name: TITLE }).waitFor();
  const fresh = (await storedTokens(page))[0]!;
  expect(fresh).not.toBe(expired);
  expect(subjectOf(fresh)).toBe(subjectOf(token));
  // Refreshed, not read back from storage: Convex Auth handed out a new refresh token with it.
  expect(await stored(page, "__convexAuthRefreshToken")).not.toEqual([refreshToken]);
  expect(await page.getByRole("heading", { name: "Staff sign-in" }).count()).toBe(0);
  expect(errors).toEqual([]);
  await close();
}, 60_000);

test("the demo's console keeps its ?as= identities and no sign-in, whatever VITE_AUTH the environment has", async () => {
  // The demo's build was made with VITE_AUTH=convex-auth in the environment (tests/e2e/setup.ts), as
  // .env.local has it for the deployment's console.
  process.env.ADMIN_EMAILS = ADMIN_IDENTITY.email;
  let demo: AdminServer | undefined;
  try {
    demo = await serveAdmin(stack, { dist: inject("adminDist") });
    const { page, errors, close } = await openConsole({ url: `${demo.url}/?as=admin#/` });
    await page.getByRole("link", { name: TITLE }).waitFor();
    expect(await page.locator(".bridge-banner").textContent()).toContain("acting as admin");
    expect(await page.getByRole("heading", { name: "Staff sign-in" }).count()).toBe(0);
    expect(await page.getByTestId("account").count()).toBe(0);
    expect(errors).toEqual([]);
    await close();
  } finally {
    process.env.ADMIN_EMAILS = WARDEN.email;
    await demo?.close();
  }
}, 60_000);

/** The stack's JWT_PRIVATE_KEY (a PEM on one line, as Convex Auth's setup writes it). */
function deploymentKey(): KeyObject {
  const der = Buffer.from(process.env.JWT_PRIVATE_KEY!.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
}

/** A token like Convex Auth's, signed with `key`. */
function forge(key: KeyObject, claims: Record<string, unknown>) {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const body = `${part({ alg: "RS256" })}.${part(claims)}`;
  return `${body}.${createSign("RSA-SHA256").update(body).sign(key, "base64url")}`;
}

async function runAs(token: string, name: string) {
  const response = await fetch(`${server.url}/bridge/run`, {
    method: "POST",
    // The demo's identity header must not override a token.
    headers: { "content-type": "application/json", "x-bridge-as": "admin", authorization: `Bearer ${token}` },
    body: JSON.stringify([{ kind: "query", name, args: {} }]),
  });
  return { status: response.status, body: response.ok ? await response.json() : await response.text() };
}

test("the bridge runs a call as a token's holder only when the deployment's key signed it, for this issuer, unexpired", async () => {
  // Through Convex's HTTP API, as Convex Auth's client refreshes: a sign-in, then a refresh.
  const userId = await createAccount(NURSE);
  const http = new ConvexHttpClient(server.url);
  const signedIn = await http.action(signInRef, { provider: "password", params: { ...NURSE, flow: "signIn" } });
  const refreshed = await http.action(signInRef, { refreshToken: signedIn.tokens.refreshToken });
  expect(subjectOf(refreshed.tokens.token)).toBe(subjectOf(signedIn.tokens.token));
  process.env.ADMIN_SUBJECTS = userId;

  for (const token of [signedIn.tokens.token, refreshed.tokens.token]) {
    const { status, body } = await runAs(token, "admin:statusCounts");
    expect(status).toBe(200);
    expect(body[0].value).toMatchObject({ stored: 1 });
  }

  // Refused with 401 (the client fetches a fresh token): another key, another issuer, an expired token, garbage.
  const claims = JSON.parse(Buffer.from(signedIn.tokens.token.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
  const ownKey = deploymentKey();
  const otherKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  const now = Math.floor(Date.now() / 1000);
  expect((await runAs(forge(ownKey, claims), "admin:statusCounts")).status).toBe(200);
  for (const [reason, token] of [
    ["bad signature", forge(otherKey, claims)],
    ["unexpected issuer", forge(ownKey, { ...claims, iss: "https://elsewhere.example" })],
    ["unexpected audience", forge(ownKey, { ...claims, aud: "other" })],
    ["expired", forge(ownKey, { ...claims, exp: now - 1 })],
    ["not a JWT", "garbage"],
  ]) {
    const { status, body } = await runAs(token!, "admin:statusCounts");
    expect({ reason, status }).toEqual({ reason, status: 401 });
    expect(body).toContain(reason);
  }

  // A valid token of an unlisted user is refused by the function, not by the bridge.
  delete process.env.ADMIN_SUBJECTS;
  const refused = await runAs(signedIn.tokens.token, "admin:statusCounts");
  expect(refused.status).toBe(200);
  expect(refused.body[0].error.data).toBe("forbidden");
}, 30_000);
