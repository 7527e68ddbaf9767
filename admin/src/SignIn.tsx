/**
 * Sign-in for a deployment with Convex Auth and its Password provider (the
 * game's), built in with `VITE_AUTH=convex-auth` (main.tsx). Until the backend
 * has accepted a token, the console shows the form; then the console itself,
 * under a bar that says who is signed in and signs out. Whether the account
 * is an admin is the backend's decision (ADMIN_SUBJECTS): a signed-in
 * non-admin gets the console's forbidden page.
 */
import { useAuthActions, useAuthToken } from "@convex-dev/auth/react";
import { useConvexAuth } from "convex/react";
import { useState, type FormEvent, type ReactNode } from "react";

type Flow = "signIn" | "signUp";

/** Convex Auth's errors in words; never which of email and password was wrong. */
function describeSignInError(error: unknown, flow: Flow): string {
  const message = (error as Error)?.message ?? String(error);
  if (/TooManyFailedAttempts/.test(message)) return "Too many failed attempts. Wait a while, then try again.";
  if (/InvalidAccountId|InvalidSecret/.test(message)) return "Wrong email or password.";
  if (/already exists/.test(message)) return "An account with this email already exists: sign in instead.";
  if (/Invalid password/.test(message)) return "Choose a password of at least 8 characters.";
  if (/fetch|network|unreachable|cannot be reached/i.test(message)) return "The backend cannot be reached. Try again in a moment.";
  return flow === "signUp" ? "The account could not be created." : "Could not sign in.";
}

/** The user id (the part of the token's subject before `|`): what an operator lists in ADMIN_SUBJECTS. */
function userIdOf(token: string | null): string | undefined {
  try {
    const claims = JSON.parse(atob(token!.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as { sub?: string };
    return claims.sub?.split("|")[0];
  } catch {
    return undefined;
  }
}

function AccountBar() {
  const { signOut } = useAuthActions();
  const userId = userIdOf(useAuthToken());
  const [busy, setBusy] = useState(false);
  return (
    <div className="account-bar" data-testid="account">
      <span>
        Signed in
        {userId && (
          <>
            {" "}
            · user id{" "}
            <span className="mono" data-testid="user-id">
              {userId}
            </span>
          </>
        )}
      </span>
      <button
        type="button"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          void signOut().finally(() => setBusy(false));
        }}
      >
        Sign out
      </button>
    </div>
  );
}

function SignInForm() {
  const { signIn } = useAuthActions();
  const [flow, setFlow] = useState<Flow>("signIn");
  const [state, setState] = useState<{ kind: "idle" | "busy" } | { kind: "error"; message: string }>({ kind: "idle" });
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (state.kind === "busy") return;
    const form = new FormData(event.currentTarget);
    form.set("flow", flow);
    setState({ kind: "busy" });
    try {
      await signIn("password", form);
      setState({ kind: "idle" });
    } catch (error) {
      setState({ kind: "error", message: describeSignInError(error, flow) });
    }
  };
  const signingUp = flow === "signUp";
  return (
    <main className="signin" aria-labelledby="signin-title">
      <h1 id="signin-title">{signingUp ? "Create a staff account" : "Staff sign-in"}</h1>
      <p className="muted">Case File Portraits · admin console</p>
      <form onSubmit={submit}>
        <label>
          Email
          <input name="email" type="email" autoComplete="username" required />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={signingUp ? "new-password" : "current-password"}
            minLength={signingUp ? 8 : undefined}
            required
          />
        </label>
        <button type="submit" className="primary" disabled={state.kind === "busy"}>
          {signingUp ? "Create account" : "Sign in"}
        </button>
        <p role="status" className={state.kind === "error" ? "error-text" : "muted"}>
          {state.kind === "busy" ? (signingUp ? "Creating the account…" : "Signing in…") : state.kind === "error" ? state.message : ""}
        </p>
      </form>
      <p className="muted">
        {signingUp ? "A new account sees the console once an administrator lists its user id in ADMIN_SUBJECTS. " : "No account yet? "}
        <button
          type="button"
          className="link-button"
          onClick={() => {
            setFlow(signingUp ? "signIn" : "signUp");
            setState({ kind: "idle" });
          }}
        >
          {signingUp ? "I have an account" : "Create an account"}
        </button>
      </p>
    </main>
  );
}

/** The console for signed-in users; the form for everyone else. */
export function ConvexAuthGate({ children }: { children: ReactNode }) {
  const { isLoading, isAuthenticated } = useConvexAuth();
  if (isLoading) {
    return (
      <main className="signin">
        <p className="muted" role="status">
          Checking your sign-in…
        </p>
      </main>
    );
  }
  if (!isAuthenticated) return <SignInForm />;
  return (
    <>
      <AccountBar />
      {children}
    </>
  );
}
