/**
 * Convex Auth with the Password provider, as a Convex module: what a
 * deployment that signs its admins in with Convex Auth has as
 * `convex/auth.ts` (the game already has its own). It is not in convex/ so
 * that this project's deployment does not require `@convex-dev/auth` of
 * adopters who sign in with Clerk or Auth0: the embedded stack registers it
 * as `convex/auth.ts` when asked (`startDemoStack({ convexAuth: true })`),
 * and docs/OPERATIONS.md ("Admin identities", Convex Auth) says how to add it to a deployment.
 */
import { Password } from "@convex-dev/auth/providers/Password";
import { convexAuth } from "@convex-dev/auth/server";

export const { auth, signIn, signOut, store, isAuthenticated } = convexAuth({ providers: [Password] });
