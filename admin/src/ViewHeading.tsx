import { useEffect, useRef, type ReactNode } from "react";
import { takeFocusRequest } from "./route";

const APP_TITLE = "Case File Portraits admin";

/**
 * A view's heading: names the document (`title`), and takes focus when the
 * view was reached by navigating, so a screen reader or keyboard user lands
 * on the new view rather than on the link they left.
 */
export function ViewHeading({ id, title, children, className }: { id: string; title: string; children: ReactNode; className?: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · ${APP_TITLE}`;
  }, [title]);
  useEffect(() => {
    if (takeFocusRequest()) ref.current?.focus();
  }, []);
  return (
    <h2 id={id} ref={ref} tabIndex={-1} className={className}>
      {children}
    </h2>
  );
}
