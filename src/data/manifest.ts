/**
 * manifest.csv: one row per image. Required columns: file (path relative to the folder), category,
 * identity. Optional: yaw, pitch, roll (degrees, conventions in poses.ts), split, parts (a part-label PNG).
 * Any other column is kept as an extra. RFC 4180 quoting ("a, b" and "" for a quote) is read and written.
 */

export const MANIFEST_COLUMNS = ['file', 'category', 'identity', 'yaw', 'pitch', 'roll', 'split'] as const;

export interface CsvTable {
  header: string[];
  /** Data rows with their 1-based line numbers in the file (the header is line 1). */
  rows: { line: number; cells: string[] }[];
}

/** Parses CSV text. `where` names the file in errors. Blank lines are skipped. */
export function parseCsv(text: string, where: string): CsvTable {
  const records: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let startLine = 1;
  let any = false;
  const endRecord = () => {
    cells.push(cell);
    if (!(cells.length === 1 && cells[0].trim() === '' && !any)) records.push({ line: startLine, cells });
    cells = [];
    cell = '';
    any = false;
  };
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (quoted) {
      if (ch === '"') {
        if (s[i + 1] === '"') cell += '"', i++;
        else quoted = false;
      } else {
        if (ch === '\n') line++;
        cell += ch;
      }
      continue;
    }
    if (ch === '"') {
      if (cell.trim() !== '') throw new Error(`${where}:${line}: a quote inside an unquoted field`);
      cell = '';
      quoted = true;
      any = true;
    } else if (ch === ',') {
      cells.push(cell);
      cell = '';
      any = true;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && s[i + 1] === '\n') i++;
      endRecord();
      line++;
      startLine = line;
    } else {
      cell += ch;
    }
  }
  if (quoted) throw new Error(`${where}:${startLine}: a quoted field is not closed before the end of the file`);
  if (cell !== '' || cells.length > 0) endRecord();
  if (records.length === 0) throw new Error(`${where}: the file is empty (it needs a header line: ${MANIFEST_COLUMNS.join(',')})`);
  const [head, ...rows] = records;
  return { header: head.cells.map((h) => h.trim()), rows };
}

function quote(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

export function formatCsv(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const lines = [header.map(quote).join(',')];
  for (const r of rows) lines.push(r.map((v) => quote(typeof v === 'number' ? formatNumber(v) : v)).join(','));
  return lines.join('\n') + '\n';
}

/** Numbers in manifests: at most 4 decimals, no trailing zeros, no "-0". */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '';
  const s = String(Number(v.toFixed(4)));
  return s === '-0' ? '0' : s;
}
