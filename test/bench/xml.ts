/** Test helper for the benchmark harness's SVG output. */
import assert from 'node:assert/strict';

/**
 * A small XML well-formedness check (no XML parser among the dependencies): every tag
 * closes in order, one root element, attributes quoted and unique, no raw `<` or stray
 * `&` in text or attribute values. Returns the elements as [name, attributes].
 */
export function parseXml(xml: string): Array<[string, Record<string, string>]> {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const elements: Array<[string, Record<string, string>]> = [];
  const stack: string[] = [];
  let roots = 0;
  const entityOk = (s: string, where: string) => {
    const bad = /&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(s);
    assert.equal(bad, null, `stray & in ${where}: ${s}`);
  };
  for (const m of body.matchAll(/<[^>]*>|[^<]+/g)) {
    const tok = m[0];
    if (!tok.startsWith('<')) {
      assert.ok(stack.length > 0 || tok.trim() === '', `text outside the root element: ${tok}`);
      entityOk(tok, 'text');
      continue;
    }
    if (tok.startsWith('<!--')) continue;
    const close = /^<\/([A-Za-z_][-\w:.]*)\s*>$/.exec(tok);
    if (close) {
      assert.equal(stack.pop(), close[1], `mismatched </${close[1]}>`);
      continue;
    }
    const open = /^<([A-Za-z_][-\w:.]*)((?:\s+[A-Za-z_:][-\w:.]*="[^"<]*")*)\s*(\/?)>$/.exec(tok);
    assert.ok(open, `malformed tag: ${tok}`);
    const attrs: Record<string, string> = {};
    for (const a of (open[2] ?? '').matchAll(/([A-Za-z_:][-\w:.]*)="([^"<]*)"/g)) {
      const k = a[1] as string;
      assert.ok(!(k in attrs), `duplicate attribute ${k} in ${tok}`);
      entityOk(a[2] as string, `attribute ${k}`);
      attrs[k] = a[2] as string;
    }
    if (stack.length === 0) roots++;
    elements.push([open[1] as string, attrs]);
    if (open[3] !== '/') stack.push(open[1] as string);
  }
  assert.deepEqual(stack, [], 'unclosed elements');
  assert.equal(roots, 1, 'exactly one root element');
  return elements;
}
