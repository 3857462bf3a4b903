/**
 * CSV (RFC 4180) to records, pure: fields separated by commas, optionally quoted with `"`
 * (a quote inside a quoted field doubled), records ended by LF or CRLF; a leading UTF-8 BOM is
 * dropped. Each record carries the line it starts on, for error messages. Blank lines are skipped.
 */

export interface CsvRecord {
  /** 1-based line of the record's first character. */
  line: number;
  fields: string[];
}

export type CsvResult = { ok: true; records: CsvRecord[] } | { ok: false; line: number; column: number; message: string };

export function parseCsv(text: string): CsvResult {
  const records: CsvRecord[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let fields: string[] = [];
  let field = '';
  let recordLine = 1;
  let atFieldStart = true;
  let lineStart = i;
  const endRecord = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '')) records.push({ line: recordLine, fields });
    fields = [];
    field = '';
    atFieldStart = true;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (atFieldStart && c === '"') {
      const quoteLine = line;
      const quoteColumn = i - lineStart + 1;
      i++;
      for (;;) {
        if (i >= text.length) return { ok: false, line: quoteLine, column: quoteColumn, message: 'a quoted field is not closed' };
        const q = text[i]!;
        if (q === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (q === '\n') {
          line++;
          lineStart = i + 1;
        }
        field += q;
        i++;
      }
      const next = text[i];
      if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') {
        return { ok: false, line, column: i - lineStart + 1, message: 'a quoted field must end at a comma or the end of the line' };
      }
      atFieldStart = false;
      continue;
    }
    if (c === ',') {
      fields.push(field);
      field = '';
      atFieldStart = true;
      i++;
      continue;
    }
    if (c === '\r' && text[i + 1] === '\n') {
      i++;
      continue;
    }
    if (c === '\n') {
      endRecord();
      i++;
      line++;
      lineStart = i;
      recordLine = line;
      continue;
    }
    field += c;
    atFieldStart = false;
    i++;
  }
  if (field !== '' || fields.length > 0) endRecord();
  return { ok: true, records };
}
