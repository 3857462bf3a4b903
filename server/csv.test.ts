import { describe, expect, it } from 'vitest';
import { parseCsv } from './csv.js';

describe('parseCsv', () => {
  it('reads fields, quotes, doubled quotes, CRLF and a BOM; records carry their first line', () => {
    expect(parseCsv('\ufeffkind,id,name\r\nasset,a1,"桥, 北"\n\nasset,a2,"say ""hi""\nnext line"\nasset,a3,\n')).toEqual({
      ok: true,
      records: [
        { line: 1, fields: ['kind', 'id', 'name'] },
        { line: 2, fields: ['asset', 'a1', '桥, 北'] },
        { line: 4, fields: ['asset', 'a2', 'say "hi"\nnext line'] },
        { line: 6, fields: ['asset', 'a3', ''] },
      ],
    });
  });

  it('a last record without a newline', () => {
    expect(parseCsv('a,b\n1,2')).toEqual({
      ok: true,
      records: [
        { line: 1, fields: ['a', 'b'] },
        { line: 2, fields: ['1', '2'] },
      ],
    });
  });

  it('names the line and column of an unclosed quote and of text after a closing quote', () => {
    expect(parseCsv('a,b\n1,"open\n')).toEqual({ ok: false, line: 2, column: 3, message: 'a quoted field is not closed' });
    expect(parseCsv('a,b\n1,"x"y\n')).toEqual({ ok: false, line: 2, column: 6, message: 'a quoted field must end at a comma or the end of the line' });
  });
});
