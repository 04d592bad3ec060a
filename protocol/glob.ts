/**
 * Globs as operators write them in configuration (alert rules' `devices`, processors' `include`): `*` any run of
 * characters, `?` one, everything else literal.
 */

/** A glob (`*` any run of characters, `?` one) → a test of whole ids. */
export function globTest(glob: string): (id: string) => boolean {
  if (glob === '*') return () => true;
  if (!/[*?]/.test(glob)) return (id) => id === glob;
  const re = new RegExp(
    `^${glob
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
    's',
  );
  return (id) => re.test(id);
}
