/** Output shared by the benchmark scripts: aligned text tables for people, one JSON line for run-all. */

export type Cell = string | number;

function cellText(c: Cell): string {
  return typeof c === 'number' ? String(c) : c;
}

/** A plain-text table with columns padded to their widest cell (numbers right-aligned). */
export function textTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => cellText(r[i] ?? '').length)));
  const line = (cells: readonly Cell[]) =>
    cells
      .map((c, i) => {
        const t = cellText(c);
        const w = widths[i] ?? t.length;
        return typeof c === 'number' ? t.padStart(w) : t.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function markdownTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const line = (cells: readonly Cell[]) =>
    `| ${cells.map((c) => cellText(c).replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(headers), `|${headers.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

/**
 * Prints the result line run-all reads: it must be the last line on stdout, so call it last and
 * print nothing after it.
 */
export function emitResult(result: { readonly bench: string } & Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
