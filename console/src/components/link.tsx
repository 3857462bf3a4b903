/** An anchor that changes the route without reloading the page. */
import type { ComponentChildren } from 'preact';
import { navigate } from '../router';

export function Link(props: { href: string; class?: string; children: ComponentChildren; testId?: string }) {
  return (
    <a
      href={props.href}
      class={props.class}
      data-testid={props.testId}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
        e.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}
