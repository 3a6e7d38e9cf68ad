/**
 * Tokens of RocketMQ's SQL92 filter subset. Keywords are case-insensitive, as
 * SQL's are; identifiers (property names) keep their case, since property
 * keys are case-sensitive.
 */
import { SqlFilterError } from './errors.js';

export const KEYWORDS = ['AND', 'OR', 'NOT', 'BETWEEN', 'IN', 'IS', 'NULL', 'TRUE', 'FALSE', 'CONTAINS', 'STARTSWITH', 'ENDSWITH'] as const;
export type Keyword = (typeof KEYWORDS)[number];

export type ComparisonOp = '=' | '<>' | '>' | '>=' | '<' | '<=';

export type Token =
  | { kind: 'keyword'; word: Keyword; at: number }
  | { kind: 'ident'; name: string; at: number }
  | { kind: 'string'; value: string; at: number }
  | { kind: 'number'; value: number; text: string; at: number }
  | { kind: 'op'; op: ComparisonOp; at: number }
  | { kind: 'punct'; char: '(' | ')' | ',' | '-' | '+'; at: number }
  | { kind: 'end'; at: number };

const KEYWORD_SET: ReadonlySet<string> = new Set(KEYWORDS);
const IDENT_START = /[A-Za-z_$]/;
const IDENT_PART = /[A-Za-z0-9_$.]/;
const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/;

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const at = i;
    if (c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new SqlFilterError(text, at, 'the string is not closed with a quote');
        const d = text[i]!;
        if (d === "'") {
          // SQL escapes a quote inside a string by doubling it.
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += d;
        i++;
      }
      tokens.push({ kind: 'string', value, at });
      continue;
    }
    const number = NUMBER.exec(text.slice(i, i + 400));
    if (number && (c !== '.' || /\d/.test(text[i + 1] ?? ''))) {
      const t = number[0];
      if (IDENT_START.test(text[i + t.length] ?? '')) throw new SqlFilterError(text, at, `"${text.slice(at, at + t.length + 1)}" is neither a number nor a property name`);
      const value = Number(t);
      if (!Number.isFinite(value)) throw new SqlFilterError(text, at, `number ${t} is out of range`);
      tokens.push({ kind: 'number', value, text: t, at });
      i += t.length;
      continue;
    }
    if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < text.length && IDENT_PART.test(text[j]!)) j++;
      const word = text.slice(i, j);
      const upper = word.toUpperCase();
      tokens.push(KEYWORD_SET.has(upper) ? { kind: 'keyword', word: upper as Keyword, at } : { kind: 'ident', name: word, at });
      i = j;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === '<>' || two === '>=' || two === '<=') {
      tokens.push({ kind: 'op', op: two, at });
      i += 2;
      continue;
    }
    if (two === '!=' || two === '==') throw new SqlFilterError(text, at, `"${two}" is not SQL: write ${two === '!=' ? '<>' : '='}`);
    if (c === '=' || c === '>' || c === '<') {
      tokens.push({ kind: 'op', op: c, at });
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === ',' || c === '-' || c === '+') {
      tokens.push({ kind: 'punct', char: c, at });
      i++;
      continue;
    }
    throw new SqlFilterError(text, at, `unexpected character "${c}"`);
  }
  tokens.push({ kind: 'end', at: text.length });
  return tokens;
}
